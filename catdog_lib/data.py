"""The book's small dataset: find the photos, check them, split them, load them.

``prepare_small_dataset`` turns a folder of Kaggle-named photos
(``cat.0.jpg``, ``dog.0.jpg``, ...) into the book's layout::

    cats_and_dogs_small/
        train/{cats,dogs}/        1,000 per class
        validation/{cats,dogs}/     500 per class
        test/{cats,dogs}/           500 per class
        manifest.csv  report.txt  source.json

It only ever reads the source, judges every file on its own (a broken one
is rejected and listed, the rest go on), refuses to mix up splits, and
never deletes what it did not make. ``load_datasets`` then gives the three
``tf.data`` pipelines the notebooks train on.
"""
import csv
import ctypes
import errno
import functools
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import stat
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Callable

import numpy as np
from PIL import Image, UnidentifiedImageError

from . import config, toy

SPLITS = ("train", "validation", "test")
BOOK_WORDS = {"train": "training", "validation": "validation", "test": "test"}
KAGGLE_NAME = re.compile(r"^(cat|dog)\.(\d+)\.([A-Za-z0-9]+)$")
EXTENSION_FORMATS = {"jpg": "JPEG", "jpeg": "JPEG", "png": "PNG", "webp": "WEBP",
                     "gif": "GIF", "bmp": "BMP"}
# Modes Pillow turns into RGB without guessing; 16-bit and float modes need a
# scaling choice we will not make silently.
CONVERTIBLE_MODES = {"1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "YCbCr"}
# Limits per source file, so no archive can exhaust memory. Kaggle's photos
# are at most 500x500 and a few hundred KB; a 50-megapixel phone photo is
# 10-25 MB. A file at both limits takes up to about 0.6 GB to check
# (a CMYK or transparent image, measured), and ``workers`` files are checked
# at a time.
MAX_FILE_BYTES = 64 * 2**20       # as stored and as unpacked from a zip
MAX_PIXELS = 64_000_000           # width x height


class DatasetError(Exception):
    """Raised when the photos cannot be turned into a trustworthy split."""


class BadImage(Exception):
    """One file that is not a usable image; the message says why."""


@dataclass
class Candidate:
    """One source file with a Kaggle name, not yet read."""
    name: str        # "cat.12.jpg"
    label: str       # "cats" or "dogs"
    index: int
    origin: str      # where it came from, for messages
    read: Callable[[], bytes] = field(repr=False)  # raises BadImage when it cannot

    @property
    def output_name(self):
        """The name it is saved under: every image becomes a JPEG."""
        return Path(self.name).stem + ".jpg"


@dataclass
class Prepared:
    """What ``prepare_small_dataset`` did, for printing and for tests."""
    dest: Path
    source: str
    counts: dict
    problems: list
    leaks: list
    canonical: int
    copied: int
    note: str = ""


# ---------------------------------------------------------------- sources

def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def _label_of(match):
    return "cats" if match.group(1) == "cat" else "dogs"


def _check_size(size, what="bytes"):
    if size > MAX_FILE_BYTES:
        raise BadImage(f"{size:,} {what}, more than the limit of {MAX_FILE_BYTES:,} per file")


def _read_file(path):
    """Read one file of a source folder, within the size limit."""
    try:
        # O_NONBLOCK: a named pipe called cat.1.jpg must not hang the run.
        with open(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise BadImage("not a regular file")
            _check_size(info.st_size)
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise BadImage(f"cannot be read: {err.strerror or err}") from None
    _check_size(len(data))  # it grew while being read
    return data


def _read_member(archive, info):
    """Read one zip member, trusting neither its header nor its content."""
    _check_size(info.compress_size, "bytes compressed")
    _check_size(info.file_size, "bytes unpacked")
    try:
        with archive.open(info) as f:
            # Never more than the header declares, even when the content
            # inflates further: a lying header then fails the CRC check.
            return f.read(info.file_size)
    except Exception as err:
        # zipfile raises BadZipFile (bad CRC), zlib.error, EOFError,
        # RuntimeError (encrypted), NotImplementedError (compression) ...:
        # each means this member is unusable, not the archive.
        raise BadImage(f"cannot be read from the archive: {err}") from None


def _folder_candidates(folder):
    found = []
    for path in sorted(Path(folder).iterdir()):
        match = KAGGLE_NAME.match(path.name)
        # Broken links and odd files are kept, to be rejected with a reason.
        if match and not path.is_dir():
            found.append(Candidate(path.name, _label_of(match), int(match.group(2)),
                                   str(path), functools.partial(_read_file, path)))
    return found


def _check_member_name(zip_path, name):
    """Refuse entries that would land outside any destination (zip-slip)."""
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or re.match(r"^[A-Za-z]:", name):
        raise DatasetError(
            f"{zip_path}: refusing unsafe archive entry {name!r}: it points outside "
            "the folder it would be extracted to (zip-slip)")


def _zip_candidates(zip_path):
    try:
        archive = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile as err:
        raise DatasetError(f"{zip_path}: not a readable zip archive ({err})") from err
    found = []
    for info in archive.infolist():
        _check_member_name(zip_path, info.filename)
        name = PurePosixPath(info.filename).name
        match = KAGGLE_NAME.match(name)
        if match and not info.is_dir():
            found.append(Candidate(name, _label_of(match), int(match.group(2)),
                                   f"{zip_path}:{info.filename}",
                                   functools.partial(_read_member, archive, info)))
    return found


def _check_output_names(candidates):
    """Stop when two files would be saved under one name (cat.6.jpg and
    cat.6.png both become cat.6.jpg): one would silently replace the other."""
    seen = {}
    for cand in candidates:
        first = seen.setdefault(cand.output_name, cand)
        if first is not cand:
            raise DatasetError(f"{first.origin} and {cand.origin} would both be saved as "
                               f"{cand.output_name}; remove or rename one of them")


def kaggle_candidates(source):
    """List the Kaggle-named images in a folder or a zip archive.

    Parameters
    ----------
    source : path
        A folder holding ``cat.N.jpg`` / ``dog.N.jpg`` files, or a zip
        (Kaggle's ``train.zip``, Google's ``cats_and_dogs_filtered.zip``).

    Returns
    -------
    list of Candidate
        Sorted by class and number. Files are read later, one at a time.

    Raises
    ------
    DatasetError
        When the source is missing or unreadable, holds no Kaggle-named
        images, has a zip entry pointing outside its folder, or holds two
        files that would be saved under one name.

    Example
    -------
    >>> from catdog_lib import data, toy
    >>> import tempfile
    >>> folder = toy.make_toy_set(tempfile.mkdtemp(), per_class=2)
    >>> [c.name for c in data.kaggle_candidates(folder)]
    ['cat.0.jpg', 'cat.1.jpg', 'dog.0.jpg', 'dog.1.jpg']
    """
    source = Path(source)
    try:
        if source.is_dir():
            found = _folder_candidates(source)
        elif source.is_file() and zipfile.is_zipfile(source):
            found = _zip_candidates(source)
        elif source.exists():
            raise DatasetError(f"{source}: neither a folder nor a zip archive")
        else:
            raise DatasetError(f"{source}: no such folder or file")
    except OSError as err:
        raise DatasetError(f"{source}: cannot be read ({err.strerror or err})") from None
    if not found:
        raise DatasetError(f"{source}: holds no Kaggle-named images (cat.N.jpg, dog.N.jpg)")
    found.sort(key=lambda c: (c.label, c.index, c.name))
    _check_output_names(found)
    return found


def download_filtered():
    """Download Google's ``cats_and_dogs_filtered.zip`` into the data folder.

    The archive has no published checksum, so the size is checked here and
    every image inside is checked against the Kaggle originals' hashes later.
    It downloads under a hidden work name and takes the archive's name only
    once checked, one download at a time: a failed, cut, killed or
    concurrent download never leaves a wrong archive under that name.

    Returns
    -------
    pathlib.Path
        The checked archive, ``<data root>/downloads/cats_and_dogs_filtered.zip``.
    """
    import keras

    # Checked here: keras.utils.get_file would quietly download to /tmp instead.
    folder = config.writable_dir("CATDOG_DATA_DIR") / "downloads"
    path = folder / "cats_and_dogs_filtered.zip"
    if path.exists() and _archive_problem(path) is None:  # a whole archive is only read
        return path
    with _locked(path):
        if path.exists():  # again: another process may have finished it meanwhile
            if (problem := _archive_problem(path)) is None:
                return path
            # Not made by this version (which only renames checked downloads): kept, not deleted.
            aside = _kept_beside(path, "damaged")
            os.rename(path, aside)
            print(f"{config.display_path(path)} was not a whole archive ({problem}); "
                  f"moved it to {aside.name} and downloading again.", flush=True)
        work = _work_folder(path, "partial")
        try:
            got = Path(keras.utils.get_file(work.name, origin=config.FILTERED_URL,
                                            cache_dir=str(folder.parent), cache_subdir=folder.name))
        except Exception as err:  # get_file wraps every network failure in Exception
            work.unlink(missing_ok=True)
            raise DatasetError(f"download of {config.FILTERED_URL} failed: {err}") from err
        if got != work:  # get_file saves to /tmp/.keras when it finds the folder unwritable
            got.unlink(missing_ok=True)
            raise DatasetError(f"{config.display_path(folder)}: cannot write there")
        if problem := _archive_problem(work):
            work.unlink()
            raise DatasetError(f"{path.name}: the download {problem}; "
                               "removed it, please try again")
        os.replace(work, path)
    _mention_leftovers(path)
    return path


def _archive_problem(path):
    """What is wrong with a copy of the archive, or None when it is whole."""
    size = path.stat().st_size
    if size != config.FILTERED_SIZE:
        return f"has {size:,} bytes but the archive is {config.FILTERED_SIZE:,}"
    try:
        with zipfile.ZipFile(path) as archive:
            broken = archive.testzip()
    except zipfile.BadZipFile as err:
        broken = str(err)
    return f"is corrupt (first bad entry: {broken})" if broken else None


# ---------------------------------------------------------------- checking

def _to_rgb_jpeg(data, name):
    img = Image.open(io.BytesIO(data))
    extension = name.rsplit(".", 1)[-1].lower()
    expected = EXTENSION_FORMATS.get(extension)
    if img.format != expected:
        raise BadImage(f"content is {img.format} but the extension says .{extension}")
    # Image.open has read only the header: refuse before the pixels take memory.
    if img.width * img.height > MAX_PIXELS:
        raise BadImage(f"{img.width}x{img.height} pixels, more than the limit of "
                       f"{MAX_PIXELS:,}")
    img.load()
    if img.mode not in CONVERTIBLE_MODES:
        raise BadImage(f"colour mode {img.mode} cannot be turned into RGB safely")
    if img.format == "JPEG" and img.mode == "RGB":
        return data, img.width, img.height
    if "A" in img.mode or "transparency" in img.info:
        # Transparent pixels hold arbitrary colours: lay them on white. The
        # RGBA image is its own mask (its alpha), so no channel is copied.
        rgba = img if img.mode == "RGBA" else img.convert("RGBA")
        rgb = Image.new("RGB", rgba.size, (255, 255, 255))
        rgb.paste(rgba, mask=rgba)
    else:
        rgb = img.convert("RGB")
    out = io.BytesIO()
    rgb.save(out, format="JPEG", quality=95)
    return out.getvalue(), rgb.width, rgb.height


def check_image(data, name):
    """Decode one file fully and return it as RGB JPEG bytes.

    Parameters
    ----------
    data : bytes
        The file's content.
    name : str
        Its file name; the extension must match the content.

    Returns
    -------
    (bytes, int, int)
        JPEG bytes, width, height. An RGB JPEG is returned byte for byte, so
        original photos stay original; anything else (grayscale, CMYK, PNG
        with alpha, ...) is converted to RGB and saved as JPEG.

    Raises
    ------
    BadImage
        With the reason: empty, not an image, truncated or otherwise
        undecodable, wrong extension, more than ``MAX_PIXELS`` pixels, or a
        colour mode that cannot be turned into RGB.

    Example
    -------
    >>> from catdog_lib import data
    >>> data.check_image(b"", "cat.1.jpg")
    Traceback (most recent call last):
    ...
    catdog_lib.data.BadImage: empty file (0 bytes)
    """
    if not data:
        raise BadImage("empty file (0 bytes)")
    try:
        return _to_rgb_jpeg(data, name)
    except BadImage:
        raise
    except UnidentifiedImageError:
        raise BadImage("not an image: Pillow cannot identify its format") from None
    except Image.DecompressionBombError as err:
        # Pillow's own, higher, limit stops the header of a huge image first.
        raise BadImage(f"more than the limit of {MAX_PIXELS:,} pixels ({err})") from None
    except Exception as err:
        # A malformed file can make a decoder raise almost anything (OSError,
        # SyntaxError, ValueError, struct.error, ...); it rejects this file only.
        raise BadImage(f"cannot be decoded fully: {err}") from None


def canonical_hashes():
    """The sha256 of the original Kaggle files ``cat/dog.0-2499.jpg``."""
    with open(config.CANONICAL_TABLE, newline="") as f:
        return {row["file"]: row["sha256"] for row in csv.DictReader(f, delimiter="\t")}


# ---------------------------------------------------------------- splitting

def plan_split(candidates, sizes=None):
    """Assign candidates to splits by number, the book's way.

    Per class, the lowest numbers go to train, the next to validation, the
    next to test: on Kaggle's files that is 0-999, 1000-1499, 1500-1999.
    When a source holds fewer images than the sizes ask for (Google's
    filtered zip has 1,500 per class), train keeps its size and the rest is
    shared between validation and test in proportion.

    Parameters
    ----------
    candidates : list of Candidate
    sizes : dict, optional
        Images per class for each split (default ``config.SPLIT_SIZES``).

    Returns
    -------
    list of (split, Candidate)
    """
    sizes = dict(sizes or config.SPLIT_SIZES)
    plan = []
    for label in config.CLASSES:
        mine = [c for c in candidates if c.label == label]
        if len(mine) <= sizes["train"]:
            raise DatasetError(f"only {len(mine)} {label} images; the training split "
                               f"alone needs {sizes['train']} and validation needs more")
        rest = len(mine) - sizes["train"]
        wanted = sizes["validation"] + sizes["test"]
        n_val = sizes["validation"] if rest >= wanted else rest * sizes["validation"] // wanted
        n_test = min(sizes["test"], rest - n_val)
        bounds = {"train": (0, sizes["train"]),
                  "validation": (sizes["train"], sizes["train"] + n_val),
                  "test": (sizes["train"] + n_val, sizes["train"] + n_val + n_test)}
        for split, (lo, hi) in bounds.items():
            plan.extend((split, c) for c in mine[lo:hi])
    return plan


def _range_note(plan):
    """'train 0-999, validation 1000-1499, ...' for the cats, to say what was used."""
    parts = []
    for split in SPLITS:
        numbers = [c.index for s, c in plan if s == split and c.label == "cats"]
        parts.append(f"{split} {min(numbers)}-{max(numbers)}" if numbers else f"{split} none")
    return ", ".join(parts)


def _check_one(item):
    split, cand = item
    try:
        raw = cand.read()
        out, width, height = check_image(raw, cand.name)
    except BadImage as err:
        return {"problem": (cand.origin, str(err))}
    return {"split": split, "class": cand.label, "filename": cand.output_name,
            "source_name": cand.name, "source_sha256": _sha256(raw), "sha256": _sha256(out),
            "width": width, "height": height, "bytes": out}


def _find_leaks(rows):
    """Groups of byte-identical images that sit in more than one split."""
    by_hash = {}
    for row in rows:
        by_hash.setdefault(row["source_sha256"], []).append(row)
    return [[f"{r['split']}/{r['class']}/{r['filename']}" for r in group]
            for group in by_hash.values() if len({r["split"] for r in group}) > 1]


def _check_trainable(counts, problems):
    """Stop when a split lacks a class: the book's recipe cannot train,
    validate or test on it, and a "success" would only fail later."""
    empty = [f"{s}/{c}" for s in SPLITS for c in config.CLASSES if counts[s][c] == 0]
    if empty:
        raise DatasetError(f"no usable images for {', '.join(empty)} ({len(problems)} "
                           "rejected); every split needs both classes. Nothing was written.")


# ---------------------------------------------------------------- writing
#
# Deleting is allowed only for what this run made. The new split is written
# into a work folder beside the destination whose name is unique to the run,
# then swapped in, under a lock, so the destination always holds one whole
# dataset: the previous one or the new one.

MANIFEST_FIELDS = ["split", "class", "filename", "sha256", "width", "height", "source_sha256"]
OWN_FILES = ("manifest.csv", "report.txt", "source.json")


def _beside(dest, suffix):
    """A hidden path next to ``dest``: ``.cats_and_dogs_small.<suffix>``."""
    return dest.parent / f".{dest.name}.{suffix}"


def _unique(kind):
    return f"{kind}-{os.getpid()}-{secrets.token_hex(3)}"


def _work_folder(dest, kind):
    return _beside(dest, _unique(kind))


def _kept_beside(dest, kind):
    """A visible name beside ``dest``, ``NAME.<kind>-...``, for what is kept
    for the user to look at: never listed as a work folder safe to delete."""
    return dest.parent / f"{dest.name}.{_unique(kind)}"


@contextmanager
def _locked(dest):
    """Hold ``.<dest>.lock`` so that one process at a time writes ``dest``
    (a prepared split, or the downloaded archive).

    The kernel drops an flock when its process ends, however it ends, so a
    crash or ``kill -9`` never leaves a stale lock behind.
    """
    try:  # here, not at the top: Windows has no fcntl, and loads prepared data all the same
        import fcntl
    except ModuleNotFoundError:
        raise DatasetError(
            f"{config.display_path(dest)}: preparing a dataset needs file locks (Python's fcntl, "
            "on Linux and macOS), which this system lacks. On Windows, use WSL, Colab or "
            "Binder.") from None

    path = _beside(dest, "lock")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+")
    except OSError as err:
        raise DatasetError(f"{dest.parent}: cannot write there ({err.strerror})") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            print(f"Waiting for another catdog process (pid {handle.read().strip() or '?'}) "
                  f"to finish with {config.display_path(dest)} ...", flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError as err:  # some network file systems have no locks
            raise DatasetError(f"{dest.parent}: cannot lock files there ({err.strerror}); "
                               "use a local folder") from None
        handle.truncate(0)
        handle.write(str(os.getpid()))
        handle.flush()
        yield


def _exchange(a, b):
    """Swap two folders in one step with Linux's renameat2(RENAME_EXCHANGE).

    Returns False where the system or the file system cannot.
    """
    if sys.platform != "linux":
        return False
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:  # a C library older than glibc 2.28
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _swap_in(work, dest):
    """Put ``work`` at ``dest``; return the folder now holding the previous
    dataset, for the caller to delete, or None."""
    if not dest.exists() or not any(dest.iterdir()):
        os.rename(work, dest)  # replaces an empty folder in one step
        return None
    if _exchange(work, dest):
        return work
    # Two renames: a kill between them leaves no dataset at dest, so the
    # journal names the previous one for _recover to put back.
    old, journal = _work_folder(dest, "old"), _beside(dest, "swap")
    journal.write_text(old.name)
    os.rename(dest, old)
    os.rename(work, dest)
    journal.unlink()
    return old


def _recover(dest):
    """Undo a swap cut short by a killed run: put the previous dataset back."""
    journal = _beside(dest, "swap")
    if not journal.exists():
        return
    old = dest.parent / journal.read_text().strip()
    if not dest.exists() and old.name.startswith(_beside(dest, "old-").name) and old.is_dir():
        os.rename(old, dest)
        print(f"Restored {config.display_path(dest)}: an interrupted run had moved it "
              f"to {old.name}.")
    journal.unlink()


def _mention_leftovers(dest):
    """Name the work folders of killed runs; only the run that made a
    folder deletes it, so these are left to the user."""
    pattern = re.compile(re.escape(f".{dest.name}.") + r"(partial|old)-")
    left = sorted(p.name for p in dest.parent.iterdir() if pattern.match(p.name))
    if left:
        print(f"Left by interrupted runs in {config.display_path(dest.parent)}, "
              f"safe to delete: {', '.join(left)}")


def _prepared_rows(dest):
    """The manifest rows of a dataset this program prepared at ``dest``, or
    None when ``manifest.csv`` or ``source.json`` is missing or unreadable."""
    if _source_of(dest) is None:
        return None
    try:
        with open(dest / "manifest.csv", newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
    except (OSError, ValueError, KeyError, TypeError, csv.Error):
        return None
    if not {"split", "class", "filename", "sha256"} <= set(reader.fieldnames or ()):
        return None
    return rows


def _manifest_files(rows):
    return {f"{r['split']}/{r['class']}/{r['filename']}" for r in rows}


def _matches(dest, rows):
    """True when ``dest`` already holds exactly these rows, verified on disk."""
    stored = _prepared_rows(dest)
    if stored is None:
        return False
    wanted = {(r["split"], r["class"], r["filename"], r["sha256"]) for r in rows}
    if wanted != {(r["split"], r["class"], r["filename"], r["sha256"]) for r in stored}:
        return False
    on_disk = {p.relative_to(dest).as_posix() for s in SPLITS for p in (dest / s).rglob("*") if p.is_file()}
    if on_disk != _manifest_files(rows):
        return False
    return all(_sha256((dest / s / c / n).read_bytes()) == h for s, c, n, h in wanted)


def _listing(names):
    shown = ", ".join(names[:5])
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _foreign(dest, rows):
    """What sits in a prepared ``dest`` that its manifest does not list."""
    ours = {*OWN_FILES, *SPLITS, *(f"{s}/{c}" for s in SPLITS for c in config.CLASSES),
            *_manifest_files(rows)}
    return sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")
                  if p.relative_to(dest).as_posix() not in ours)


def _check_overlap(dest, source_path):
    if source_path is not None:
        src = Path(source_path).resolve()
        if dest == src or src in dest.parents or dest in src.parents:
            raise DatasetError(f"{dest}: the destination overlaps the source {src}; "
                               "choose a separate folder so the source is never changed")


def _guard_dest(dest, overwrite):
    """Stop unless writing ``dest`` can lose nothing: it is missing, empty,
    or (with ``overwrite``) a dataset this program prepared and nothing else."""
    if dest.exists() and not dest.is_dir():
        raise DatasetError(f"{dest}: is a file, not a folder; choose another destination")
    if not dest.exists() or not any(dest.iterdir()):
        return
    rows = _prepared_rows(dest)
    if rows is None:
        there = sorted(p.name + "/" * p.is_dir() for p in dest.iterdir())
        raise DatasetError(f"{dest}: holds files that are not a prepared dataset "
                           f"({_listing(there)}: no readable manifest.csv and source.json); "
                           "nothing was changed, choose an empty folder")
    foreign = _foreign(dest, rows)
    if foreign:
        raise DatasetError(f"{dest}: holds files its manifest does not list "
                           f"({_listing(foreign)}); nothing was changed, move them away "
                           "or choose another folder")
    if not overwrite:
        raise DatasetError(f"{dest}: already holds a different prepared dataset; "
                           "pass overwrite=True (--overwrite) to replace it")


def _write_report(path, source, note, problems, leaks, canonical, rows):
    lines = [f"source: {source}"]
    if note:
        lines.append(f"note: {note}")
    lines.append(f"images kept: {len(rows)}")
    lines.append(f"byte-identical to the Kaggle originals: {canonical} of {len(rows)}")
    converted = sorted(r["source_name"] for r in rows if r["sha256"] != r["source_sha256"])
    lines.append(f"converted to RGB JPEG: {len(converted)}")
    lines += [f"  {name}" for name in converted]
    lines.append(f"rejected: {len(problems)}")
    lines += [f"  {origin}: {reason}" for origin, reason in problems]
    lines.append(f"images in more than one split: {len(leaks)} groups")
    lines += ["  " + " = ".join(group) for group in leaks]
    path.write_text("\n".join(lines) + "\n")


def _fill(folder, rows, source, note, problems, leaks, canonical):
    for row in rows:
        (folder / row["split"] / row["class"]).mkdir(parents=True, exist_ok=True)
        (folder / row["split"] / row["class"] / row["filename"]).write_bytes(row["bytes"])
    with open(folder / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, MANIFEST_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    _write_report(folder / "report.txt", source, note, problems, leaks, canonical, rows)
    (folder / "source.json").write_text(json.dumps({"source": source, "note": note}, indent=1))


def _write(dest, *content):
    """Write the split into this run's work folder, then swap it in."""
    work = _work_folder(dest, "partial")
    work.mkdir()
    try:
        _fill(work, *content)
        previous = _swap_in(work, dest)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    if previous is None:
        return
    # _guard_dest checked the previous dataset before the write; a file saved
    # into it since then is not this program's to delete.
    rows = _prepared_rows(previous)
    added = _foreign(previous, rows) if rows is not None else []
    if rows is None or added:
        kept = _kept_beside(dest, "kept")
        os.rename(previous, kept)
        changed = (f"files its manifest does not list were saved there ({_listing(added)})"
                   if added else "its manifest.csv or source.json changed")
        print(f"Kept the previous dataset in {config.display_path(kept)}: during this run "
              f"{changed}. Move out what you need, then delete that folder.")
    else:
        shutil.rmtree(previous)


# ---------------------------------------------------------------- the one call

def _resolve_source(source):
    """Return (kind, candidates, path or None, note)."""
    if source is None:
        source = config.profile()["source"]
        if source == "auto":
            source = config.kaggle_train() or "download"
            if source == "download":
                try:
                    return _resolve_source("download")
                except DatasetError as err:
                    print(f"{err}\nFalling back to the generated toy set.")
                    source = "toy"
    if source == "toy":
        folder = toy.make_toy_set()
        return "toy", kaggle_candidates(folder), folder, (
            "generated toy images from catdog_lib.toy, not the book's photos")
    if source == "download":
        path = download_filtered()
        return "cats_and_dogs_filtered", kaggle_candidates(path), path, (
            "Google's cats_and_dogs_filtered.zip holds cat/dog 0-999 and 2000-2499, "
            "not the book's 1000-1999; its 2000-2499 are shared between validation and test")
    return "kaggle", kaggle_candidates(source), Path(source), ""


def default_dest(source_kind):
    """Where a source's split goes: the toy set keeps its own folder, so it
    never clashes with a split of real photos."""
    name = "cats_and_dogs_small_toy" if source_kind == "toy" else "cats_and_dogs_small"
    return config.data_dir() / name


def _counts(rows):
    return {s: {c: sum(r["split"] == s and r["class"] == c for r in rows)
                for c in config.CLASSES} for s in SPLITS}


def prepare_small_dataset(source=None, dest=None, sizes=None, overwrite=False,
                          allow_leakage=False, workers=4):
    """Build the book's train/validation/test split from cats-and-dogs photos.

    Every source file is judged alone: one that cannot be read or decoded,
    or is larger than ``MAX_FILE_BYTES`` or ``MAX_PIXELS``, is rejected with
    its reason and the run goes on. One run at a time prepares a destination
    (a second waits), and the destination always holds a whole dataset, the
    previous one or the new one, even if a run is killed.

    Parameters
    ----------
    source : path or {"toy", "download"}, optional
        A Kaggle train folder or zip, ``"download"`` for Google's
        ``cats_and_dogs_filtered.zip``, or ``"toy"`` for generated images.
        By default: ``CATDOG_KAGGLE_TRAIN``, then the download, then the toy
        set (the ``smoke`` profile always uses the toy set).
    dest : path, optional
        The folder to create (default ``data/cats_and_dogs_small``, or
        ``data/cats_and_dogs_small_toy`` for the toy set).
    sizes : dict, optional
        Images per class for ``train``, ``validation`` and ``test``.
    overwrite : bool
        Replace a different dataset that this program prepared at ``dest``.
        Anything else there is never replaced.
    allow_leakage : bool
        Keep going when a byte-identical image sits in two splits.
    workers : int
        Threads that read and decode in parallel.

    Returns
    -------
    Prepared
        The destination, counts per split and class, rejected files with
        their reasons, leaks, and how many files are original Kaggle bytes.

    Raises
    ------
    DatasetError
        When no trustworthy split can be written; nothing is changed then.

    Example
    -------
    >>> import tempfile
    >>> from catdog_lib import data, toy
    >>> src = toy.make_toy_set(tempfile.mkdtemp(), per_class=8)
    >>> out = data.prepare_small_dataset(src, tempfile.mkdtemp() + "/small",
    ...     sizes={"train": 4, "validation": 2, "test": 2})  # doctest: +ELLIPSIS
    Source: kaggle ...
    >>> out.counts["train"]
    {'cats': 4, 'dogs': 4}
    """
    if dest is None:
        config.writable_dir("CATDOG_DATA_DIR")  # fail now, not after decoding
    kind, candidates, source_path, note = _resolve_source(source)
    dest = Path(dest or default_dest(kind)).resolve()
    _check_overlap(dest, source_path)
    source_label = kind if kind == "toy" else f"{kind} ({config.display_path(source_path)})"
    plan = plan_split(candidates, sizes)
    if kind != "toy" and "filtered" not in kind:
        note = note or f"split by file number: {_range_note(plan)}"
    with ThreadPoolExecutor(workers) as pool:
        checked = list(pool.map(_check_one, plan))
    problems = [c["problem"] for c in checked if "problem" in c]
    rows = [c for c in checked if "problem" not in c]
    originals = canonical_hashes()
    canonical = sum(originals.get(r["source_name"]) == r["source_sha256"] for r in rows)
    if kind == "cats_and_dogs_filtered" and canonical != len(rows):
        raise DatasetError(f"{source_path.name}: only {canonical} of {len(rows)} images match "
                           "the Kaggle originals' hashes; the download is damaged or altered")
    leaks = _find_leaks(rows)
    counts = _counts(rows)
    result = Prepared(dest, source_label, counts, problems, leaks, canonical, 0, note)

    print(f"Source: {source_label}" + (f"\nNote: {note}" if note else ""))
    for origin, reason in problems:
        print(f"  rejected {origin}: {reason}")
    if problems:
        print("Kept: " + "; ".join(f"{s} {counts[s]['cats']} cats, {counts[s]['dogs']} dogs"
                                   for s in SPLITS))
    _check_trainable(counts, problems)
    for group in leaks:
        print(f"  LEAK: the same image sits in {' and '.join(group)}")
    if leaks and not allow_leakage:
        raise DatasetError(f"{len(leaks)} image(s) sit in more than one split "
                           f"(first: {' = '.join(leaks[0])}); nothing was written. "
                           "Pass allow_leakage=True to keep going anyway.")
    with _locked(dest):
        _recover(dest)
        _mention_leftovers(dest)
        if _matches(dest, rows):
            print(f"{config.display_path(dest)} is already prepared and verified; "
                  "nothing copied.")
            return result
        # A split of an older toy set holds nothing that cannot be drawn again.
        overwrite = overwrite or (kind == "toy" and _source_of(dest) == "toy")
        _guard_dest(dest, overwrite)
        _write(dest, rows, source_label, note, problems, leaks, canonical)
    result.copied = len(rows)
    print(f"Copied {len(rows)} images to {config.display_path(dest)} "
          f"({len(problems)} rejected; report in {config.display_path(dest / 'report.txt')}).")
    return result


# ---------------------------------------------------------------- reading back

def _source_of(dest):
    """The source label a prepared split records in source.json, or None."""
    try:
        return json.loads((Path(dest) / "source.json").read_text())["source"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def prepared_dir():
    """The prepared split the notebooks train on.

    The ``smoke`` profile always uses the toy split. Otherwise the real
    photos' split is used when it exists, and the toy split when not.
    """
    real = default_dest("kaggle")
    if config.profile()["name"] != "smoke" and (real / "manifest.csv").exists():
        return real
    return default_dest("toy")


def ensure_prepared():
    """The prepared split to train on, made first when there is none yet.

    Notebooks 03-06 call it, so they also run in a fresh runtime (Colab)
    where notebook 02 has not run: it then prepares the data as 02 would
    (a Kaggle folder, else the download, else the toy set). A split whose
    replacement a killed run cut short is put back first.

    Returns
    -------
    pathlib.Path
    """
    for dest in {default_dest("kaggle"), default_dest("toy")}:
        if _beside(dest, "swap").exists():  # a swap cut short: put the previous split back
            with _locked(dest):
                _recover(dest)
    dest = prepared_dir()
    if not (dest / "manifest.csv").exists():
        dest = prepare_small_dataset().dest
    return dest


def describe(dest=None):
    """One line saying where the images came from, for every data-dependent output."""
    dest = Path(dest or prepared_dir())
    source = _source_of(dest)
    if source is None:
        raise FileNotFoundError(f"{dest / 'source.json'}: no prepared split here")
    if source == "toy":
        return "GENERATED toy images (catdog_lib.toy), not the book's photos"
    return f"real photos from {source}"


def count_images(dest=None):
    """Images per split and class, counted on disk as the book does.

    Returns
    -------
    dict
        ``{"train": {"cats": 1000, "dogs": 1000}, ...}``
    """
    dest = Path(dest or prepared_dir())
    return {s: {c: len(list((dest / s / c).glob("*.jpg"))) for c in config.CLASSES}
            for s in SPLITS}


def print_counts(dest=None):
    """Print the book's lines: ``total training cat images: 1000`` ..."""
    for split, per_class in count_images(dest).items():
        for label, n in per_class.items():
            print(f"total {BOOK_WORDS[split]} {label[:-1]} images: {n}")


def _number_ranges(numbers):
    """'0-4, 6-999' for the file numbers 0 to 999 without 5."""
    runs = []
    for n in sorted(numbers):
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ", ".join(f"{lo}-{hi}" if hi > lo else str(lo) for lo, hi in runs)


def _book_numbers():
    """The book's file numbers per split, the same for both classes."""
    numbers, start = {}, 0
    for split in SPLITS:
        numbers[split] = set(range(start, start + config.SPLIT_SIZES[split]))
        start += config.SPLIT_SIZES[split]
    return numbers


def describe_split(dest=None):
    """Say which Kaggle file numbers each split holds, and whether that is the book's split.

    The split depends on the source: the book's is, per class, train
    0-999, validation 1000-1499 and test 1500-1999, but Google's
    ``cats_and_dogs_filtered.zip`` has no 1000-1999, so its validation and
    test share 2000-2499. This reads what was actually copied.

    Parameters
    ----------
    dest : path, optional
        A prepared split (default: ``prepared_dir()``).

    Returns
    -------
    str
        One line per split with its images per class and their file
        numbers, then one line saying whether this is the book's split.

    Raises
    ------
    FileNotFoundError
        When ``dest`` holds no readable ``manifest.csv`` and ``source.json``.

    Example
    -------
    >>> import tempfile
    >>> from catdog_lib import data, toy
    >>> src = toy.make_toy_set(tempfile.mkdtemp(), per_class=8)
    >>> out = data.prepare_small_dataset(src, tempfile.mkdtemp() + "/small",
    ...     sizes={"train": 4, "validation": 2, "test": 2})  # doctest: +ELLIPSIS
    Source: kaggle ...
    >>> print(data.describe_split(out.dest))
    train: 4 cats (cat.0-3), 4 dogs (dog.0-3)
    validation: 2 cats (cat.4-5), 2 dogs (dog.4-5)
    test: 2 cats (cat.6-7), 2 dogs (dog.6-7)
    Not the book's split (per class, train 0-999, validation 1000-1499, test 1500-1999).
    """
    dest = Path(dest or prepared_dir())
    rows = _prepared_rows(dest)
    if rows is None:
        raise FileNotFoundError(f"{dest / 'manifest.csv'}: no prepared split here")
    numbers = {(s, c): set() for s in SPLITS for c in config.CLASSES}
    for row in rows:
        numbers[row["split"], row["class"]].add(int(KAGGLE_NAME.match(row["filename"]).group(2)))
    lines = []
    for split in SPLITS:
        parts = [f"{len(numbers[split, c]):,} {c} ({c[:-1]}.{_number_ranges(numbers[split, c])})"
                 for c in config.CLASSES]
        lines.append(f"{split}: {', '.join(parts)}")
    book = _book_numbers()
    book_note = ", ".join(f"{split} {_number_ranges(book[split])}" for split in SPLITS)
    if all(numbers[split, label] == book[split] for split, label in numbers):
        lines.append(f"The book's split: per class, {book_note}.")
    else:
        lines.append(f"Not the book's split (per class, {book_note}).")
    return "\n".join(lines)


def report(dest=None):
    """The validation report written by ``prepare_small_dataset``."""
    return (Path(dest or prepared_dir()) / "report.txt").read_text()


def sample_files(dest=None, per_class=4, seed=None):
    """A few image paths and labels from every split, chosen with the seed.

    Returns
    -------
    dict
        ``{split: [(path, label), ...]}``
    """
    import random

    rng = random.Random(config.seed() if seed is None else seed)
    dest = Path(dest or prepared_dir())
    out = {}
    for split in SPLITS:
        picks = []
        for label in config.CLASSES:
            files = sorted((dest / split / label).glob("*.jpg"))
            picks += [(p, label) for p in rng.sample(files, min(per_class, len(files)))]
        out[split] = picks
    return out


def load_datasets(dest=None, image_size=config.IMAGE_SIZE, batch_size=config.BATCH_SIZE,
                  seed=None, test_images=None):
    """The train, validation and test pipelines, as ``tf.data`` datasets.

    Training and validation images are decoded once, resized and kept in
    memory as uint8 (a quarter of float32's memory); the model rescales them
    to [0, 1] itself. Validation comes in one fixed shuffled order; the
    training set is reshuffled every epoch from the seed. The test set is
    read once, at the end, in file order, so it is decoded when used instead
    of held in memory through training.

    Parameters
    ----------
    dest : path, optional
        A prepared split (default: ``prepared_dir()``).
    image_size : (int, int)
    batch_size : int
    seed : int, optional
        Defaults to ``config.seed()``.
    test_images : int, optional
        Read only this many test images: the first ``test_images // 2`` cats
        and as many dogs (one more if odd), as the ``smoke`` profile does so
        that CI scores a model in seconds. Every test image by default.

    Returns
    -------
    (tf.data.Dataset, tf.data.Dataset, tf.data.Dataset)
        Batches of ``(uint8 images, float32 labels)``; label 0 is cat, 1 is dog.

    Example
    -------
    >>> from catdog_lib import data
    >>> train, val, test = data.load_datasets()  # doctest: +SKIP
    """
    import keras
    import tensorflow as tf

    dest = Path(dest or prepared_dir())
    seed = config.seed() if seed is None else seed
    counts = count_images(dest)
    if test_images:
        cats, dogs = test_images // 2, test_images - test_images // 2
    pipelines = []
    for split in SPLITS:
        # Training and validation are shuffled, so a few validation batches
        # hold both classes; cache() then freezes that order. The test split is
        # read in its fixed file order: cats, then dogs. Caching uint8 pixels after
        # the decode, and shuffling the whole training set, were chosen by
        # measurement (the "pipeline" rows of benchmarks/results/speed.json):
        # a float32 cache streams slower and takes 500 MB more, decoding every
        # epoch is far slower, and a smaller shuffle buffer saves nothing.
        read_once = split == "test"
        ds = keras.utils.image_dataset_from_directory(
            dest / split, label_mode="binary", class_names=list(config.CLASSES),
            image_size=image_size, batch_size=None, shuffle=not read_once, seed=seed,
            verbose=False)  # its "Found 2000 files" lines: one line below says it all
        ds = ds.map(lambda x, y: (tf.cast(tf.round(x), tf.uint8), y),
                    num_parallel_calls=tf.data.AUTOTUNE)
        if not read_once:
            ds = ds.cache()
        if split == "train":
            n = sum(counts["train"].values())
            ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
        if read_once and test_images:  # file order: every cat, then every dog
            ds = ds.take(cats).concatenate(ds.skip(counts["test"][config.CLASSES[0]]).take(dogs))
        pipelines.append(ds.batch(batch_size).prefetch(tf.data.AUTOTUNE))
    print(f"Images: {describe(dest)}")
    print("Split: " + ", ".join(f"{sum(counts[s].values()):,} {s}" for s in SPLITS) + " images")
    if test_images:
        print(f"Test set: the first {cats} cats and {dogs} dogs of the "
              f"{sum(counts['test'].values()):,} test images (test_images={test_images})")
    return tuple(pipelines)


def example_photo(label="cats", dest=None):
    """The first training image of a class in the prepared split, or None
    when no split has been prepared yet."""
    folder = Path(dest or prepared_dir()) / "train" / label
    files = sorted(folder.glob("*.jpg")) if folder.is_dir() else []
    return files[0] if files else None


# ---------------------------------------------------------------- one new photo

def _as_model_input(pixels):
    """Resize as ``load_datasets`` does: ``image_dataset_from_directory``'s
    bilinear ``tf.image.resize`` with no aspect-ratio crop, then round to uint8."""
    import tensorflow as tf

    resized = tf.image.resize(pixels, config.IMAGE_SIZE, method="bilinear")
    return tf.cast(tf.round(resized), tf.uint8).numpy()


def photo_from_bytes(content, name):
    """An image file's content as the model's input, checked like a training photo.

    Parameters
    ----------
    content : bytes or memoryview
        The file's content, e.g. ``upload.value[0]["content"]`` of an
        ``ipywidgets.FileUpload``.
    name : str
        Its file name; the extension must match the content.

    Returns
    -------
    numpy.ndarray
        ``(150, 150, 3)`` uint8, decoded and resized exactly as
        ``load_datasets`` decodes and resizes the prepared photos.

    Raises
    ------
    BadImage
        With a message that starts with the file name and says why: more than
        ``MAX_FILE_BYTES``, or any reason ``check_image`` gives.

    Example
    -------
    >>> import io
    >>> from PIL import Image
    >>> from catdog_lib import data
    >>> png = io.BytesIO()
    >>> Image.new("RGB", (400, 300)).save(png, format="PNG")
    >>> data.photo_from_bytes(png.getvalue(), "my_cat.png").shape
    (150, 150, 3)
    >>> data.photo_from_bytes(b"<html>Not found</html>", "my_cat.jpg")
    Traceback (most recent call last):
    ...
    catdog_lib.data.BadImage: my_cat.jpg: not an image: Pillow cannot identify its format
    """
    import tensorflow as tf

    try:
        _check_size(len(content))  # before bytes() copies it
        jpeg, _, _ = check_image(bytes(content), name)
    except BadImage as err:
        raise BadImage(f"{name}: {err}") from None
    # check_image's RGB JPEG is what prepare_small_dataset stores, decoded
    # here by the same call image_dataset_from_directory makes.
    return _as_model_input(tf.image.decode_image(jpeg, channels=3, expand_animations=False))


def photo_from_array(pixels):
    """An RGB image array as the model's input, resized as ``load_datasets`` does.

    Parameters
    ----------
    pixels : array, (H, W, 3)
        uint8 RGB pixels, e.g. ``skimage.data.chelsea()``.

    Returns
    -------
    numpy.ndarray
        ``(150, 150, 3)`` uint8.

    Example
    -------
    >>> import skimage.data
    >>> from catdog_lib import data
    >>> data.photo_from_array(skimage.data.chelsea()).shape
    (150, 150, 3)
    """
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        # A float image in [0, 1] would look almost black to the model, silently.
        raise ValueError(f"expected uint8 RGB pixels of shape (height, width, 3), "
                         f"got {pixels.dtype} of shape {pixels.shape}")
    return _as_model_input(pixels)
