"""The dataset step: validation, splitting, safety and idempotency."""
import csv
import io
import shutil
import zipfile

import numpy as np
import pytest
from PIL import Image

from catdog_lib import data, toy
from conftest import ODD_IMAGES, REAL_TRAIN, SMALL_SIZES, tree_hashes


def image_bytes(mode="RGB", size=(40, 30), fmt="JPEG"):
    colour = {"L": 128, "1": 1, "I;16": 30000, "CMYK": (0, 128, 255, 0),
              "RGBA": (200, 20, 20, 128), "LA": (90, 200)}.get(mode, (200, 120, 40))
    out = io.BytesIO()
    Image.new(mode, size, colour).save(out, format=fmt)
    return out.getvalue()


def prepare(src, dest, **kw):
    return data.prepare_small_dataset(src, dest, sizes=SMALL_SIZES, **kw)


# ------------------------------------------------------------- check_image

@pytest.mark.parametrize("content, name, reason", [
    (b"", "cat.1.jpg", "empty file"),
    (b"<html>Not found</html>", "cat.1.jpg", "not an image"),
    (image_bytes(fmt="WEBP"), "cat.1.png", "content is WEBP but the extension says .png"),
    (image_bytes(fmt="PNG"), "cat.1.jpg", "content is PNG but the extension says .jpg"),
    (image_bytes(size=(300, 200))[:-400], "cat.1.jpg", "cannot be decoded fully"),
    (image_bytes("I;16", fmt="PNG"), "cat.1.png", "colour mode I;16"),
])
def test_bad_files_are_rejected_with_the_reason(content, name, reason):
    with pytest.raises(data.BadImage, match=reason):
        data.check_image(content, name)


@pytest.mark.parametrize("mode, fmt, name", [
    ("L", "JPEG", "cat.1.jpg"),
    ("CMYK", "JPEG", "cat.1.jpg"),
    ("RGBA", "PNG", "cat.1.png"),
    ("LA", "PNG", "cat.1.png"),
    ("RGB", "WEBP", "cat.1.webp"),
])
def test_unusual_real_photos_become_rgb_jpeg(mode, fmt, name):
    out, width, height = data.check_image(image_bytes(mode, fmt=fmt), name)
    img = Image.open(io.BytesIO(out))
    img.load()
    assert (img.format, img.mode, img.size) == ("JPEG", "RGB", (40, 30)) == ("JPEG", "RGB", (width, height))


def test_transparent_pixels_are_laid_on_white():
    transparent = io.BytesIO()
    Image.new("RGBA", (8, 8), (255, 0, 0, 0)).save(transparent, format="PNG")
    out, _, _ = data.check_image(transparent.getvalue(), "cat.1.png")
    assert np.asarray(Image.open(io.BytesIO(out))).min() > 245


def test_rgb_jpeg_is_kept_byte_for_byte():
    raw = image_bytes()
    assert data.check_image(raw, "dog.3.jpeg")[0] == raw


def test_one_pixel_image_is_kept():
    out, width, height = data.check_image(image_bytes(size=(1, 1), fmt="PNG"), "cat.1.png")
    assert (width, height) == (1, 1)
    assert Image.open(io.BytesIO(out)).mode == "RGB"


# ------------------------------------------------------------- preparing

def test_split_follows_the_book_numbering(kaggle_dir, tmp_path):
    result = prepare(kaggle_dir, tmp_path / "small")
    assert result.counts == {"train": {"cats": 6, "dogs": 6}, "validation": {"cats": 3, "dogs": 3},
                             "test": {"cats": 3, "dogs": 3}}
    names = sorted(p.name for p in (tmp_path / "small" / "validation" / "dogs").iterdir())
    assert names == ["dog.6.jpg", "dog.7.jpg", "dog.8.jpg"]
    with open(tmp_path / "small" / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 24
    assert {"split", "class", "filename", "sha256", "width", "height"} <= set(rows[0])
    first = next(r for r in rows if r["filename"] == "cat.0.jpg")
    assert (int(first["width"]), int(first["height"])) == Image.open(kaggle_dir / "cat.0.jpg").size


def test_bad_files_are_reported_by_name_and_never_copied(kaggle_dir, tmp_path, capsys):
    (kaggle_dir / "cat.1.jpg").write_bytes(b"")
    (kaggle_dir / "cat.2.jpg").write_bytes((kaggle_dir / "cat.2.jpg").read_bytes()[:300])
    (kaggle_dir / "dog.3.jpg").write_text("this is a text file")
    (kaggle_dir / "dog.4.jpg").unlink()
    (kaggle_dir / "dog.4.png").write_bytes(image_bytes(fmt="WEBP"))
    (kaggle_dir / "cat.5.jpg").write_bytes(image_bytes("CMYK"))
    (kaggle_dir / "dog.5.jpg").write_bytes(image_bytes("L"))
    before = tree_hashes(kaggle_dir)
    result = prepare(kaggle_dir, tmp_path / "small")
    printed = capsys.readouterr().out
    rejected = {origin.rsplit("/", 1)[-1]: reason for origin, reason in result.problems}
    assert set(rejected) == {"cat.1.jpg", "cat.2.jpg", "dog.3.jpg", "dog.4.png"}
    assert "empty" in rejected["cat.1.jpg"] and "WEBP" in rejected["dog.4.png"]
    report = (tmp_path / "small" / "report.txt").read_text()
    for name, reason in rejected.items():
        assert name in printed and name in report and reason in report
    assert "converted to RGB JPEG: 2\n  cat.5.jpg\n  dog.5.jpg\n" in report
    train_cats = sorted(p.name for p in (tmp_path / "small" / "train" / "cats").iterdir())
    assert "cat.1.jpg" not in train_cats and "cat.5.jpg" in train_cats
    assert Image.open(tmp_path / "small" / "train" / "dogs" / "dog.5.jpg").mode == "RGB"
    assert tree_hashes(kaggle_dir) == before


def test_rerun_verifies_and_copies_nothing(kaggle_dir, tmp_path, capsys):
    before = tree_hashes(kaggle_dir)
    assert prepare(kaggle_dir, tmp_path / "small").copied == 24
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "small").rglob("*")}
    second = prepare(kaggle_dir, tmp_path / "small")
    assert second.copied == 0
    assert "already prepared and verified" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "small").rglob("*")} == stamps
    assert tree_hashes(kaggle_dir) == before


def test_different_content_stops_unless_overwrite(kaggle_dir, tmp_path):
    dest = tmp_path / "small"
    prepare(kaggle_dir, dest)
    shutil.copy(kaggle_dir / "cat.1.jpg", kaggle_dir / "cat.0.jpg")  # change one source image
    with pytest.raises(data.DatasetError, match="already holds a different prepared dataset"):
        prepare(kaggle_dir, dest, allow_leakage=True)
    result = prepare(kaggle_dir, dest, overwrite=True, allow_leakage=True)
    assert result.copied == 24
    assert prepare(kaggle_dir, dest, allow_leakage=True).copied == 0


def test_a_tampered_destination_is_not_trusted(kaggle_dir, tmp_path):
    dest = tmp_path / "small"
    prepare(kaggle_dir, dest)
    (dest / "test" / "cats" / "cat.9.jpg").write_bytes(b"changed")
    with pytest.raises(data.DatasetError, match="different prepared dataset"):
        prepare(kaggle_dir, dest)


def test_refuses_a_foreign_destination_even_with_overwrite(kaggle_dir, tmp_path):
    dest = tmp_path / "my_documents"
    dest.mkdir()
    (dest / "thesis.docx").write_text("precious")
    with pytest.raises(data.DatasetError, match="not a prepared dataset"):
        prepare(kaggle_dir, dest, overwrite=True)
    assert (dest / "thesis.docx").read_text() == "precious"


def test_refuses_a_destination_inside_the_source(kaggle_dir):
    before = tree_hashes(kaggle_dir)
    with pytest.raises(data.DatasetError, match="overlaps the source"):
        prepare(kaggle_dir, kaggle_dir / "small")
    assert tree_hashes(kaggle_dir) == before


def test_leakage_is_an_error_by_default(kaggle_dir, tmp_path):
    shutil.copy(kaggle_dir / "dog.0.jpg", kaggle_dir / "dog.10.jpg")  # train image reappears in test
    with pytest.raises(data.DatasetError, match="more than one split.*nothing was written"):
        prepare(kaggle_dir, tmp_path / "small")
    assert not (tmp_path / "small").exists()
    result = prepare(kaggle_dir, tmp_path / "small", allow_leakage=True)
    assert result.leaks == [["train/dogs/dog.0.jpg", "test/dogs/dog.10.jpg"]]
    assert "test/dogs/dog.10.jpg" in (tmp_path / "small" / "report.txt").read_text()


def test_zip_source_is_read_in_place(kaggle_dir, tmp_path):
    archive = tmp_path / "train.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in kaggle_dir.glob("*.jpg"):
            zf.write(p, f"train/{p.name}")
    before = archive.read_bytes()
    result = prepare(archive, tmp_path / "small")
    assert result.counts["test"] == {"cats": 3, "dogs": 3}
    assert archive.read_bytes() == before
    assert (tmp_path / "small" / "train" / "cats" / "cat.0.jpg").read_bytes() == \
        (kaggle_dir / "cat.0.jpg").read_bytes()


@pytest.mark.parametrize("evil", ["../evil.jpg", "train/../../cat.99.jpg", "/tmp/cat.98.jpg"])
def test_zip_slip_is_refused(kaggle_dir, tmp_path, evil):
    archive = tmp_path / "train.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in kaggle_dir.glob("*.jpg"):
            zf.write(p, f"train/{p.name}")
        zf.writestr(evil, image_bytes())
    with pytest.raises(data.DatasetError, match="zip-slip"):
        prepare(archive, tmp_path / "small")
    assert not (tmp_path / "small").exists()
    assert not (tmp_path / "evil.jpg").exists()


def test_missing_or_empty_sources_have_clear_messages(tmp_path):
    with pytest.raises(data.DatasetError, match="no such folder"):
        prepare(tmp_path / "nowhere", tmp_path / "small")
    (tmp_path / "empty").mkdir()
    with pytest.raises(data.DatasetError, match="holds no Kaggle-named images"):
        prepare(tmp_path / "empty", tmp_path / "small")


def test_a_smaller_source_shares_what_is_left(kaggle_dir, tmp_path):
    # Like Google's filtered zip: fewer images than the sizes ask for.
    result = data.prepare_small_dataset(kaggle_dir, tmp_path / "small",
                                        sizes={"train": 8, "validation": 4, "test": 4})
    assert result.counts["train"]["cats"] == 8
    assert result.counts["validation"]["cats"] == 2 and result.counts["test"]["cats"] == 2


def test_canonical_count_uses_the_committed_table(kaggle_dir, tmp_path):
    assert prepare(kaggle_dir, tmp_path / "small").canonical == 0
    table = data.canonical_hashes()
    assert len(table) == 5000 and "dog.2499.jpg" in table


def test_load_datasets_gives_uint8_batches_with_binary_labels(kaggle_dir, tmp_path):
    prepare(kaggle_dir, tmp_path / "small")
    train, val, test = data.load_datasets(tmp_path / "small", image_size=(32, 32), batch_size=4)
    x, y = next(iter(train))
    assert x.shape == (4, 32, 32, 3) and x.dtype.name == "uint8"
    assert y.shape == (4, 1) and set(np.unique(y.numpy())) <= {0.0, 1.0}
    labels = [np.concatenate([y.numpy().ravel() for _, y in test]).tolist() for _ in range(2)]
    assert sorted(labels[0]) == [0.0] * 3 + [1.0] * 3
    assert labels[0] == labels[1]  # one fixed order for evaluation
    first = [y.numpy().ravel().tolist() for _, y in train]
    second = [y.numpy().ravel().tolist() for _, y in train]
    assert sorted(sum(first, [])) == [0.0] * 6 + [1.0] * 6
    assert first != second  # reshuffled every epoch


def test_a_few_test_images_are_half_of_each_class(kaggle_dir, tmp_path, capsys):
    prepare(kaggle_dir, tmp_path / "small")
    _, _, whole = data.load_datasets(tmp_path / "small", image_size=(32, 32), batch_size=4)
    _, _, few = data.load_datasets(tmp_path / "small", image_size=(32, 32), batch_size=4,
                                   test_images=4)
    assert "Test set: the first 2 cats and 2 dogs of the 6 test images (test_images=4)" in \
        capsys.readouterr().out
    whole_x, whole_y = (np.concatenate([b[i].numpy() for b in whole]) for i in (0, 1))
    few_x, few_y = (np.concatenate([b[i].numpy() for b in few]) for i in (0, 1))
    assert few_y.ravel().tolist() == [0.0, 0.0, 1.0, 1.0]
    # The first two cats and the first two dogs of the whole set, in its order.
    np.testing.assert_array_equal(few_x, whole_x[[0, 1, 3, 4]])


# ------------------------------------------------------------- real files

@pytest.mark.skipif(not REAL_TRAIN.is_dir(), reason="the real photos are not on this machine")
def test_real_photos_give_the_books_split(tmp_path):
    before = {p.name: p.stat().st_mtime_ns for p in REAL_TRAIN.iterdir()}
    result = data.prepare_small_dataset(REAL_TRAIN, tmp_path / "small")
    assert result.counts == {"train": {"cats": 1000, "dogs": 1000},
                             "validation": {"cats": 500, "dogs": 500},
                             "test": {"cats": 500, "dogs": 500}}
    assert result.leaks == [] and result.problems == []
    assert result.canonical == 4000
    assert {p.name: p.stat().st_mtime_ns for p in REAL_TRAIN.iterdir()} == before


@pytest.mark.skipif(not ODD_IMAGES.is_dir(), reason="the odd real images are not on this machine")
def test_odd_real_images(tmp_path):
    checks = {"cat.4821.jpg": (60, 39), "dog.4367.jpg": (195, 33), "cat_or_dog_2.jpg": (1920, 1280)}
    for name, size in checks.items():
        out, width, height = data.check_image((ODD_IMAGES / name).read_bytes(), name)
        assert (width, height) == size
    with pytest.raises(data.BadImage, match="WEBP but the extension says .png"):
        data.check_image((ODD_IMAGES / "Cat1035.png").read_bytes(), "Cat1035.png")


# ------------------------------------------------------------- describe_split

BOOK_NOTE = "per class, train 0-999, validation 1000-1499, test 1500-1999"


def test_describe_split_names_the_copied_file_numbers(kaggle_dir, tmp_path):
    prepare(kaggle_dir, tmp_path / "small")
    assert data.describe_split(tmp_path / "small").splitlines() == [
        "train: 6 cats (cat.0-5), 6 dogs (dog.0-5)",
        "validation: 3 cats (cat.6-8), 3 dogs (dog.6-8)",
        "test: 3 cats (cat.9-11), 3 dogs (dog.9-11)",
        f"Not the book's split ({BOOK_NOTE}).",
    ]


def test_describe_split_of_a_smaller_source(kaggle_dir, tmp_path):
    # Like Google's filtered zip, which has no cat/dog 1000-1999: here no 6-7.
    for name in ("cat.6.jpg", "cat.7.jpg", "dog.6.jpg", "dog.7.jpg"):
        (kaggle_dir / name).unlink()
    (kaggle_dir / "cat.3.jpg").write_bytes(b"")  # a rejected file leaves a gap
    prepare(kaggle_dir, tmp_path / "small")
    assert data.describe_split(tmp_path / "small").splitlines() == [
        "train: 5 cats (cat.0-2, 4-5), 6 dogs (dog.0-5)",
        "validation: 2 cats (cat.8-9), 2 dogs (dog.8-9)",
        "test: 2 cats (cat.10-11), 2 dogs (dog.10-11)",
        f"Not the book's split ({BOOK_NOTE}).",
    ]


def test_describe_split_recognises_the_books_split(tmp_path):
    # Only the manifest is read, so one written by hand stands in for 4,000 photos.
    (tmp_path / "source.json").write_text('{"source": "kaggle"}')
    with open(tmp_path / "manifest.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["split", "class", "filename", "sha256"])
        for n in range(2000):
            split = "train" if n < 1000 else "validation" if n < 1500 else "test"
            writer.writerows([[split, "cats", f"cat.{n}.jpg", "x"], [split, "dogs", f"dog.{n}.jpg", "y"]])
    assert data.describe_split(tmp_path).splitlines() == [
        "train: 1,000 cats (cat.0-999), 1,000 dogs (dog.0-999)",
        "validation: 500 cats (cat.1000-1499), 500 dogs (dog.1000-1499)",
        "test: 500 cats (cat.1500-1999), 500 dogs (dog.1500-1999)",
        f"The book's split: {BOOK_NOTE}.",
    ]
    with pytest.raises(FileNotFoundError, match="no prepared split"):
        data.describe_split(tmp_path / "elsewhere")


# ------------------------------------------------------------- one new photo

@pytest.mark.parametrize("mode, fmt, name", [
    ("RGB", "JPEG", "my_dog.jpg"),
    ("RGBA", "PNG", "my_dog.png"),
    ("CMYK", "JPEG", "my_dog.JPG"),
])
def test_an_uploaded_photo_becomes_the_models_input(mode, fmt, name):
    content = memoryview(image_bytes(mode, size=(320, 200), fmt=fmt))  # as FileUpload gives it
    photo = data.photo_from_bytes(content, name)
    assert photo.shape == (150, 150, 3) and photo.dtype == np.uint8


@pytest.mark.parametrize("make, name, reason", [
    (lambda: b"", "my_cat.jpg", "my_cat.jpg: empty file"),
    (lambda: b"Dear diary, today I saw a cat.", "my_cat.txt", "my_cat.txt: not an image"),
    (lambda: image_bytes("1", size=(8001, 8001), fmt="PNG"), "my_cat.png",
     "my_cat.png: 8001x8001 pixels, more than the limit of 64,000,000"),
    (lambda: bytes(data.MAX_FILE_BYTES + 1), "my_cat.jpg",
     "my_cat.jpg: 67,108,865 bytes, more than the limit"),
], ids=["empty", "text", "too many pixels", "too many bytes"])
def test_a_bad_upload_is_named_with_the_reason(make, name, reason):
    with pytest.raises(data.BadImage, match=reason):
        data.photo_from_bytes(make(), name)


def test_an_uploaded_photo_is_resized_as_the_training_photos(tmp_path):
    src = toy.make_toy_set(tmp_path / "src", per_class=8, workers=1)
    data.prepare_small_dataset(src, tmp_path / "small",
                               sizes={"train": 4, "validation": 2, "test": 2})
    first = sorted((tmp_path / "small" / "test" / "cats").glob("*.jpg"))[0]
    _, _, test = data.load_datasets(tmp_path / "small", batch_size=1)
    loaded = next(iter(test))[0][0].numpy()
    photo = data.photo_from_bytes(first.read_bytes(), first.name)
    assert Image.open(first).size != (150, 150)  # so the resizing is compared
    assert np.abs(photo.astype(int) - loaded).max() <= 1


def test_an_array_becomes_the_models_input():
    pixels = np.random.default_rng(0).integers(0, 256, (90, 240, 3), dtype=np.uint8)
    assert data.photo_from_array(pixels).shape == (150, 150, 3)
    with pytest.raises(ValueError, match="uint8 RGB pixels"):
        data.photo_from_array(pixels / 255)
