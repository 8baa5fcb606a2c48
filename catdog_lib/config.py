"""The one place for catdog's settings: paths, the profile, the seed, the precision.

Every setting is read from the environment when it is used, not when this
module is imported, so changing a variable (or ``monkeypatch.setenv`` in a
test) takes effect at once and nothing derived from it can go stale:

- ``CATDOG_PROFILE``: ``smoke`` (CI, seconds), ``quick`` (default, minutes)
  or ``full`` (the book's epochs).
- ``CATDOG_SEED``: the random seed, a whole number (default 1).
- ``CATDOG_PRECISION``: ``auto`` (default), ``float32``, ``mixed_bfloat16``
  or ``mixed_float16``.
- ``CATDOG_DETERMINISTIC``: ``1`` for bit-identical reruns (default ``0``).
- ``CATDOG_DATA_DIR``: where datasets and downloads live (default ``data/``).
- ``CATDOG_RUNS_DIR``: where training runs are saved (default ``runs/``).
- ``CATDOG_KAGGLE_TRAIN``: a local Kaggle ``train`` folder or ``train.zip``.

Relative paths are taken from the project root (the folder holding
``notebooks/``), so a kernel started in ``notebooks/`` finds the same data as
``make run``. A bad value raises ``SettingError`` naming the variable, the
value and what is allowed.
"""
import os
import re
from pathlib import Path

# TensorFlow reads this when its C++ library loads, so it must be set before
# any `import tensorflow`; `catdog_lib/__init__.py` imports this module first.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

PACKAGE_DIR = Path(__file__).resolve().parent


def _project_root():
    """The checkout holding the package, or the working folder when installed
    from a wheel (as on Colab)."""
    root = PACKAGE_DIR.parent
    if (root / "pyproject.toml").exists() and (root / "notebooks").is_dir():
        return root
    return Path.cwd()


PROJECT_ROOT = _project_root()
BUILD_DIR = PROJECT_ROOT / "build"
REFERENCE_DIR = PACKAGE_DIR / "reference"
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"

PROFILES = {
    # source: which data a profile prepares when none is named; "auto" tries
    #   a local Kaggle folder, then the download, then the toy set.
    # *_epochs: the epochs of notebook 03 (baseline) and 04 (augmented).
    # ascent_steps: notebook 05's gradient-ascent steps (the book's 40).
    # modern_*: notebook 06's epochs and updates per epoch (63 batches of 32
    #   cover the 2,000 training photos once).
    # test_images: how many test images the notebooks score (None: every one).
    # steps: batches per training epoch (None: the whole training set once);
    #   the book's augmented run draws 100 batches of 32 per epoch, its
    #   baseline 100 batches of 20, which is the whole training set.
    # "quick" is sized so notebook 03 takes about 5 minutes and 04 under 8 on
    # 2 CPU cores; the reference runs show how the full curves continue.
    "smoke": {"source": "toy", "baseline_epochs": 1, "augmented_epochs": 1,
              "baseline_steps": 3, "augmented_steps": 3, "validation_steps": 2, "ascent_steps": 2,
              "modern_epochs": 1, "modern_steps": 3, "test_images": 64},
    "quick": {"source": "auto", "baseline_epochs": 5, "augmented_epochs": 4,
              "baseline_steps": None, "augmented_steps": 63, "validation_steps": None,
              "ascent_steps": 40, "modern_epochs": 2, "modern_steps": 30, "test_images": None},
    "full": {"source": "auto", "baseline_epochs": 30, "augmented_epochs": 100,
             "baseline_steps": None, "augmented_steps": 100, "validation_steps": None,
             "ascent_steps": 40, "modern_epochs": 100, "modern_steps": 63, "test_images": None},
}
# auto: bfloat16 where the hardware computes it natively, float32 elsewhere
# (see models.choose_policy).
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")

# The book's split, per class: train 0-999, validation 1000-1499, test 1500-1999.
SPLIT_SIZES = {"train": 1000, "validation": 500, "test": 500}
CLASSES = ("cats", "dogs")
IMAGE_SIZE = (150, 150)
# Batches of 32, as in the book's augmented run (listing 5.11).
BATCH_SIZE = 32
# Notebook 04 feeds each batch of 32 to the network as 2 batches of 16. The
# optimizer averages their two gradients and updates the weights once, as
# for one batch of 32 (a test checks it), while only 16 images' activations,
# the largest part of a training step's memory, exist at a time
# (benchmarks/micro_batches.py measures what that saves).
MICRO_BATCHES = 2
# The book's baseline (listing 5.8) trains on batches of 20: its 100 steps an
# epoch cover the 2,000 training images once, so it makes 100 updates per
# epoch where batches of 32 make 63, and it overfits within the 30 epochs.
BASELINE_BATCH_SIZE = 20

# Google's subset of the Kaggle files, used by the TensorFlow tutorials.
FILTERED_URL = "https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip"
FILTERED_SIZE = 68_606_236
CANONICAL_TABLE = PACKAGE_DIR / "canonical_sha256.tsv"


class SettingError(ValueError):
    """An environment variable holds a value catdog cannot use."""


def _choice(variable, default, allowed):
    value = os.environ.get(variable, "") or default
    if value not in allowed:
        raise SettingError(f"{variable}={value!r} is not allowed; "
                           f"choose one of {', '.join(allowed)}")
    return value


def _resolve(variable, value):
    """A path setting's value, with ``~`` expanded, resolved against the project root."""
    try:
        return (PROJECT_ROOT / Path(value).expanduser()).resolve()
    except RuntimeError as err:  # ~name of a user this system does not know
        raise SettingError(f"{variable}={value!r}: {err}") from None


def _path(variable, default):
    """A folder setting, resolved against the project root."""
    value = os.environ.get(variable, "")
    path = _resolve(variable, value or default)
    if path.exists() and not path.is_dir():
        raise SettingError(f"{variable}={value!r} names {path}, which is a file, not a folder")
    return path


def profile(gpu=False):
    """The settings of the active profile, with its name under ``"name"``.

    ``quick`` is sized for a few minutes of 2 CPU cores. A GPU trains the
    book's full epochs in about that time, so with ``gpu=True`` the quick
    profile takes the full profile's epochs and steps (and says so under
    ``"gpu"``).

    Example
    -------
    >>> from catdog_lib import config
    >>> sorted(config.profile())  # doctest: +NORMALIZE_WHITESPACE
    ['ascent_steps', 'augmented_epochs', 'augmented_steps', 'baseline_epochs', 'baseline_steps',
     'gpu', 'modern_epochs', 'modern_steps', 'name', 'source', 'test_images', 'validation_steps']
    """
    name = _choice("CATDOG_PROFILE", "quick", tuple(PROFILES))
    settings = {"name": name, **PROFILES[name], "gpu": False}
    if gpu and name == "quick":
        settings.update({k: v for k, v in PROFILES["full"].items() if k != "source"}, gpu=True)
    return settings


def seed():
    """``CATDOG_SEED``: the random seed, a whole number from 0 (default 1)."""
    value = os.environ.get("CATDOG_SEED", "") or "1"
    # Not str.isdigit, which also accepts digits such as "²" that int() refuses.
    if not re.fullmatch("[0-9]+", value) or int(value) >= 2**32:
        raise SettingError(f"CATDOG_SEED={value!r} is not allowed; "
                           "give a whole number from 0 to 4294967295")
    return int(value)


def precision():
    """``CATDOG_PRECISION``: ``auto`` or a Keras dtype policy name."""
    return _choice("CATDOG_PRECISION", "auto", PRECISIONS)


def deterministic():
    """``CATDOG_DETERMINISTIC``: ``1`` trades speed for bit-identical reruns."""
    return _choice("CATDOG_DETERMINISTIC", "0", ("0", "1")) == "1"


def unattended():
    """Whether nobody watches the output (``make run``, ``make test``, CI):
    training then prints one line per epoch instead of a progress bar."""
    return (_choice("CATDOG_UNATTENDED", "0", ("0", "1")) == "1"
            or profile()["name"] == "smoke")


def verbose():
    """``model.fit``'s ``verbose``: a progress bar (1), or one line per epoch
    (2) when nobody watches, so saved outputs stay short."""
    return 2 if unattended() else 1


def data_dir():
    """``CATDOG_DATA_DIR``: where datasets and downloads live (default ``data/``)."""
    return _path("CATDOG_DATA_DIR", "data")


def runs_dir():
    """``CATDOG_RUNS_DIR``: where training runs are saved (default ``runs/``)."""
    return _path("CATDOG_RUNS_DIR", "runs")


def kaggle_train():
    """``CATDOG_KAGGLE_TRAIN``: a local Kaggle ``train`` folder or zip, or None."""
    value = os.environ.get("CATDOG_KAGGLE_TRAIN", "")
    if not value:
        return None
    path = _resolve("CATDOG_KAGGLE_TRAIN", value)
    if not path.exists():
        raise SettingError(f"CATDOG_KAGGLE_TRAIN={value!r}: no such folder or zip file "
                           f"({path}; relative paths start at the project root)")
    return path


def writable_dir(variable):
    """The folder a path setting names, created if needed; a clear error
    naming the variable if it cannot be written.

    Parameters
    ----------
    variable : {"CATDOG_DATA_DIR", "CATDOG_RUNS_DIR"}

    Returns
    -------
    pathlib.Path
    """
    path = {"CATDOG_DATA_DIR": data_dir, "CATDOG_RUNS_DIR": runs_dir}[variable]()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SettingError(f"{variable}: cannot create {path} ({err.strerror}); "
                           "point it at a folder you can write") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise SettingError(f"{variable}: {path} is not writable; "
                           "point it at a folder you can write")
    return path


def batch_size(model):
    """The book's batch size for ``"baseline"`` (notebook 03) or ``"augmented"`` (04)."""
    return BASELINE_BATCH_SIZE if model == "baseline" else BATCH_SIZE


def micro_batch_size(micro_batches):
    """The photos in each of the ``micro_batches`` batches that make one update of 32.

    Parameters
    ----------
    micro_batches : int
        A notebook's ``MICRO_BATCHES``: it must split the 32 photos of an
        update (``config.BATCH_SIZE``, the book's batch) evenly, or each
        update would see fewer of them.

    Returns
    -------
    int

    Example
    -------
    >>> from catdog_lib import config
    >>> config.micro_batch_size(2)
    16
    """
    divisors = [n for n in range(1, BATCH_SIZE + 1) if BATCH_SIZE % n == 0]
    whole = isinstance(micro_batches, int) and not isinstance(micro_batches, bool)
    why = ("is not a whole number" if not whole
           else f"does not split an update's {BATCH_SIZE} photos into equal batches")
    if not whole or micro_batches not in divisors:
        raise ValueError(f"MICRO_BATCHES = {micro_batches!r} {why}: set it to one of "
                         f"{', '.join(map(str, divisors))} ({MICRO_BATCHES} by default, more if "
                         "memory is short) in the notebook's parameters cell, the one near the top "
                         "that sets EPOCHS")
    return BATCH_SIZE // micro_batches


def display_path(path):
    """``path`` relative to the project root (``data/...``, ``../shared/...``),
    so notebook outputs never show the author's home folder."""
    try:
        return Path(os.path.relpath(Path(path).resolve(), PROJECT_ROOT)).as_posix()
    except ValueError:  # another drive, on Windows
        return str(path)
