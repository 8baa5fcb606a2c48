"""The one place for catdog's settings: paths, the profile and the seed.

Every other module reads its settings from here, so a teacher changes a
default in one file, and an environment variable changes it for one run:

- ``CATDOG_DATA_DIR``: where datasets live (default: ``data/`` in the checkout).
- ``CATDOG_PROFILE``: ``smoke`` (CI, seconds), ``quick`` (default, minutes)
  or ``full`` (the book's epochs).
- ``CATDOG_SEED``: the random seed (default 1).
- ``CATDOG_KAGGLE_TRAIN``: a local Kaggle ``train`` folder or ``train.zip``.
- ``CATDOG_PRECISION``: ``auto`` (default), ``float32``, ``mixed_bfloat16``
  or ``mixed_float16``.
- ``CATDOG_DETERMINISTIC``: ``1`` for bit-identical reruns.
"""
import os
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
DATA_DIR = Path(os.environ.get("CATDOG_DATA_DIR", PROJECT_ROOT / "data")).resolve()
BUILD_DIR = PROJECT_ROOT / "build"
RUNS_DIR = PROJECT_ROOT / "runs"
REFERENCE_DIR = PACKAGE_DIR / "reference"
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"

PROFILES = {
    # source: which data a profile prepares when none is named; "auto" tries
    #   a local Kaggle folder, then the download, then the toy set.
    # *_epochs: the epochs of notebook 03 (baseline) and 04 (augmented).
    # steps: batches per training epoch (None: the whole training set once);
    #   the book's augmented run draws 100 batches of 32 per epoch, its
    #   baseline 100 batches of 20, which is the whole training set.
    # "quick" is sized so notebook 03 stays under 5 minutes and 04 under 8 on
    # 2 CPU cores; the reference runs show how the full curves continue.
    "smoke": {"source": "toy", "baseline_epochs": 1, "augmented_epochs": 1,
              "baseline_steps": 3, "augmented_steps": 3, "validation_steps": 2},
    "quick": {"source": "auto", "baseline_epochs": 3, "augmented_epochs": 4,
              "baseline_steps": None, "augmented_steps": 63, "validation_steps": None},
    "full": {"source": "auto", "baseline_epochs": 30, "augmented_epochs": 100,
             "baseline_steps": None, "augmented_steps": 100, "validation_steps": None},
}
PROFILE = os.environ.get("CATDOG_PROFILE", "quick")
if PROFILE not in PROFILES:
    raise ValueError(
        f"CATDOG_PROFILE={PROFILE!r} is not a profile; choose one of {sorted(PROFILES)}"
    )

SEED = int(os.environ.get("CATDOG_SEED", "1"))

# Deterministic training: the same seed gives identical losses on the same
# machine (models.seed_everything). Off by default, since it forces TensorFlow
# to skip its fastest nondeterministic kernels.
DETERMINISTIC = os.environ.get("CATDOG_DETERMINISTIC") == "1"

# auto: bfloat16 where the hardware computes it natively, float32 elsewhere
# (see train.compute_policy).
PRECISION = os.environ.get("CATDOG_PRECISION", "auto")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
if PRECISION not in PRECISIONS:
    raise ValueError(f"CATDOG_PRECISION={PRECISION!r} is not one of {PRECISIONS}")

# Notebooks run by `make run`, `make test` or CI print one line per epoch
# (verbose=2) instead of a progress bar that would fill the saved output.
UNATTENDED = os.environ.get("CATDOG_UNATTENDED") == "1" or PROFILE == "smoke"

KAGGLE_TRAIN = os.environ.get("CATDOG_KAGGLE_TRAIN")

# The book's split, per class: train 0-999, validation 1000-1499, test 1500-1999.
SPLIT_SIZES = {"train": 1000, "validation": 500, "test": 500}
CLASSES = ("cats", "dogs")
IMAGE_SIZE = (150, 150)
# Batches of 32, as in the book's augmented run (listing 5.11).
BATCH_SIZE = 32
# Notebook 04 feeds each batch of 32 to the network as 2 batches of 16. The
# optimizer averages their two gradients and updates the weights once, as
# for one batch of 32 (a test checks it), while only 16 images' activations,
# the largest part of a training step's memory, exist at a time. On 2 cores
# (benchmarks/micro_batches.py) the peak fell by 142 MB and training took
# 0.90x the time, which brings notebook 04 under 1.5 GB for Binder.
MICRO_BATCHES = 2
# The book's baseline (listing 5.8) trains on batches of 20: its 100 steps an
# epoch cover the 2,000 training images once, so it makes 100 updates per
# epoch where batches of 32 make 63, and it overfits within the 30 epochs.
BASELINE_BATCH_SIZE = 20

# Google's subset of the Kaggle files, used by the TensorFlow tutorials.
FILTERED_URL = "https://storage.googleapis.com/mledu-datasets/cats_and_dogs_filtered.zip"
FILTERED_SIZE = 68_606_236
CANONICAL_TABLE = PACKAGE_DIR / "canonical_sha256.tsv"


def profile():
    """The settings of the active profile, with its name under ``"name"``."""
    return {"name": PROFILE, **PROFILES[PROFILE]}


def batch_size(model):
    """The book's batch size for ``"baseline"`` (notebook 03) or ``"augmented"`` (04)."""
    return BASELINE_BATCH_SIZE if model == "baseline" else BATCH_SIZE


def display_path(path):
    """``path`` relative to the project root (``data/...``, ``../shared/...``),
    so notebook outputs never show the author's home folder."""
    try:
        return Path(os.path.relpath(Path(path).resolve(), PROJECT_ROOT)).as_posix()
    except ValueError:  # another drive, on Windows
        return str(path)
