"""The book's augmentation layer does what the book's arguments did."""
import keras
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
    # Seed 2 draws no parameter near zero for these four images; such a draw
    # (a shear of 0.01, say) is legitimate but would barely change its image.
    layer = augment.book_augmentation(**{**NONE, **changes}, seed=2)
    return np.asarray(layer(images, training=True))


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


def test_inference_is_the_identity_and_the_seed_repeats(images):
    layer = augment.book_augmentation(seed=3)
    np.testing.assert_array_equal(layer(images, training=False), images)
    first, again = (np.asarray(augment.book_augmentation(seed=3)(images, training=True))
                    for _ in range(2))
    other = np.asarray(augment.book_augmentation(seed=4)(images, training=True))
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).mean() > 1


def smooth(x, y):
    """A smooth three-channel picture, defined at any point, so bilinear
    interpolation is nearly exact and a transform's true result is known."""
    waves = [50 * np.sin(2 * np.pi * x / 17 + c) + 40 * np.cos(2 * np.pi * (y + x / 3) / 13)
             for c in range(3)]
    return (128 + np.stack(waves, axis=-1)).astype("float32")


@pytest.mark.parametrize("p", [
    {"angle": 25, "shift_x": 0.08, "shift_y": -0.05, "shear": 0.15, "zoom_x": 1.1, "zoom_y": 0.9},
    {"angle": -35, "shift_x": -0.1, "shift_y": 0.12, "shear": -0.2, "zoom_x": 0.85, "zoom_y": 1.15},
])
def test_one_resampling_matches_the_four_keras_layers_and_the_truth(p):
    size = 128
    y, x = np.mgrid[0:size, 0:size].astype("float64")
    picture = smooth(x, y)[None]
    composed = augment.BookAugmentation().transform(
        picture, {**{k: np.float32([v]) for k, v in p.items()}, "flip": np.float32([1])})

    # The four Keras layers, fixed to the same parameters. Keras's RandomShear
    # slants about the top-left corner: that is the slant about the centre
    # plus a sideways shift of shear * centre row, which the translation takes over.
    centre = (size - 1) / 2
    nearest = {"fill_mode": "nearest"}
    out = keras.layers.RandomRotation([p["angle"] / 360] * 2, **nearest)(picture, training=True)
    out = keras.layers.RandomTranslation([p["shift_y"]] * 2,
                                         [p["shift_x"] + p["shear"] * centre / size] * 2,
                                         **nearest)(out, training=True)
    out = keras.layers.RandomShear(**nearest).transform_images(
        out, {"shear_factor": np.float32([[p["shear"], 0]])})
    separate = keras.layers.RandomZoom([p["zoom_y"] - 1] * 2, [p["zoom_x"] - 1] * 2,
                                       **nearest)(out, training=True)

    # Where each output pixel truly comes from: zoom, shear, shift, rotate.
    u, v = p["zoom_x"] * (x - centre), p["zoom_y"] * (y - centre)
    u, v = u + p["shear"] * v - p["shift_x"] * size, v - p["shift_y"] * size
    a = np.deg2rad(p["angle"])
    truth = smooth(np.cos(a) * u - np.sin(a) * v + centre, np.sin(a) * u + np.cos(a) * v + centre)

    middle = slice(48, 80)  # away from the edges, where the layers fill in turn
    error = {name: np.abs(np.asarray(result)[0][middle, middle] - truth[middle, middle]).mean()
             for name, result in [("composed", composed), ("separate", separate)]}
    difference = np.abs(np.asarray(composed - separate)[0][middle, middle]).mean()
    assert difference < 2, difference  # of 0-255: the same transform, up to interpolation
    assert error["composed"] < error["separate"] / 2, error


def test_parameters_are_drawn_from_the_books_ranges():
    p = {k: np.asarray(v) for k, v in augment.book_augmentation(seed=0).draw(20_000).items()}
    for name, low, high in [("angle", -40, 40), ("shift_x", -0.2, 0.2), ("shift_y", -0.2, 0.2),
                            ("shear", -0.2, 0.2), ("zoom_x", 0.8, 1.2), ("zoom_y", 0.8, 1.2)]:
        span = high - low
        assert low <= p[name].min() < low + span / 1000, name
        assert high - span / 1000 < p[name].max() <= high, name
    assert abs(np.corrcoef(p["zoom_x"], p["zoom_y"])[0, 1]) < 0.05  # each axis on its own
    assert set(np.unique(p["flip"])) == {-1, 1} and abs((p["flip"] < 0).mean() - 0.5) < 0.02


def test_float32_under_a_bfloat16_global_policy(images):
    expected = np.asarray(augment.book_augmentation(seed=3)(images, training=True))
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        layer = augment.book_augmentation(seed=3)
        out = layer(images, training=True)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert out.dtype == "float32"
    np.testing.assert_array_equal(out, expected)


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


@pytest.mark.parametrize("book, layer", [(b, l) for b, l, _ in augment.MAPPING if l.startswith("Random")])
def test_every_layer_in_the_mapping_table_builds_as_printed(book, layer):
    # Students copy these calls: each must build in the Keras the series installs.
    built = eval(layer, {}, vars(keras.layers))
    assert isinstance(built, keras.layers.Layer), book
