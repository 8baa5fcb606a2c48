"""The book's augmentation layers do what the book's arguments did."""
import numpy as np
import pytest

from catdog_lib import augment, data

NONE = {"rotation": 0, "shift": 0, "shear": 0, "zoom": 0, "flip": False}


@pytest.fixture(scope="module")
def images():
    """Four asymmetric test images: a gradient with a bright block off-centre."""
    x = np.zeros((4, 64, 64, 3), "float32")
    x[:] = np.linspace(20, 120, 64)[None, None, :, None]
    x[:, 8:24, 40:56] = 255
    return x


def run(images, **changes):
    return np.asarray(augment.book_augmentation(**{**NONE, **changes}, seed=3)(images, training=True))


def test_all_transforms_off_is_the_identity(images):
    np.testing.assert_allclose(run(images), images, atol=1e-3)


@pytest.mark.parametrize("change", [{"rotation": 40}, {"shift": 0.2}, {"shear": 0.2},
                                    {"zoom": 0.2}])
def test_each_transform_changes_every_image(images, change):
    out = run(images, **change)
    assert out.shape == images.shape
    assert all(np.abs(out[i] - images[i]).mean() > 1 for i in range(len(images)))
    assert out.min() >= 0 and out.max() <= 255.5


def test_flip_mirrors_or_keeps(images):
    out = run(np.repeat(images[:1], 16, axis=0), flip=True)
    mirrored = images[0][:, ::-1]
    kinds = [np.allclose(o, images[0], atol=1e-3) or np.allclose(o, mirrored, atol=1e-3) for o in out]
    assert all(kinds)
    assert any(np.allclose(o, mirrored, atol=1e-3) for o in out)


def test_nearest_fill_keeps_edges_filled(images):
    out = run(images, rotation=40)
    assert (out > 0.5).mean() > 0.99  # a constant fill would leave zero-valued corners


def test_training_only_and_validation_untouched(kaggle_dir, tmp_path):
    data.prepare_small_dataset(kaggle_dir, tmp_path / "small",
                               sizes={"train": 6, "validation": 3, "test": 3})
    train_ds, val_ds, test_ds = data.load_datasets(tmp_path / "small", batch_size=4)
    raw = np.concatenate([x.numpy() for x, _ in train_ds.take(1)])
    augmented = augment.augment(train_ds, augment.book_augmentation(seed=1),
                                batch_size=4)
    x_aug = np.concatenate([x.numpy() for x, _ in augmented.take(1)])
    assert x_aug.shape == raw.shape and x_aug.dtype == np.float32
    val_twice = [np.concatenate([x.numpy() for x, _ in val_ds]) for _ in range(2)]
    np.testing.assert_array_equal(val_twice[0], val_twice[1])
    assert val_twice[0].dtype == np.uint8  # never passed through the random layers


def test_mapping_table_covers_every_book_argument():
    table = augment.mapping_markdown()
    for argument in ("rotation_range=40", "width_shift_range=0.2", "height_shift_range=0.2",
                     "shear_range=0.2", "zoom_range=0.2", "horizontal_flip=True",
                     "fill_mode='nearest'"):
        assert argument in table
    assert "40 / 360" in table
