"""Fixtures: small Kaggle-style folders made from real toy images, the
paths of the shared real photos when this machine has them, and a guard
that fails any test leaving process-wide state changed."""
import hashlib
import os
from pathlib import Path

import pytest

from catdog_lib import toy, train  # first: TensorFlow's start-up lines are caught there

import keras  # noqa: E402
from tensorflow.python.framework.config import is_op_determinism_enabled  # noqa: E402  (no public getter)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
REAL_TRAIN = SHARED / "dogs-vs-cats" / "train"
ODD_IMAGES = SHARED / "odd-images"
SMALL_SIZES = {"train": 6, "validation": 3, "test": 3}


def tagged_sources(notebook, *tags):
    """The sources of a notebook's cells that carry any of ``tags``, in order."""
    import nbformat

    cells = nbformat.read(REPO / "notebooks" / notebook, as_version=4).cells
    return [c.source for c in cells if set(tags) & set(c.metadata.get("tags", []))]


def tree_hashes(folder):
    """sha256 of every file under ``folder``, to prove a source is untouched."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


@pytest.fixture
def kaggle_dir(tmp_path):
    """A Kaggle-layout folder with 12 toy images per class."""
    return toy.make_toy_set(tmp_path / "kaggle" / "train", per_class=12, workers=1)


def global_state():
    """What a test could change for every test after it."""
    return {"dtype policy": keras.mixed_precision.global_policy().name,
            "floatx": keras.backend.floatx(), "image data format": keras.backend.image_data_format(),
            "epsilon": keras.backend.epsilon(),
            "op determinism": is_op_determinism_enabled(),
            "environment": {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"},
            "working folder": os.getcwd()}


@pytest.fixture(autouse=True)
def leaves_no_global_state_changed():
    before = global_state()
    yield
    after = global_state()
    changed = [key for key in before if before[key] != after[key]]
    if "environment" in changed:
        changed[changed.index("environment")] = "environment variables " + ", ".join(sorted(
            name for name in {*before["environment"], *after["environment"]}
            if before["environment"].get(name) != after["environment"].get(name)))
    assert not changed, f"the test left process-wide state changed: {', '.join(changed)}"


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    """Point the data root at a fresh temporary folder."""
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("CATDOG_DATA_DIR", str(root))
    return root


def fit(model, train_ds, val_ds, epochs, run_name, steps_per_epoch=None, callbacks=(), **where):
    """Train as the notebooks do: ``model.fit`` with ``train.run_callbacks``
    (``where``: its ``data_dir`` and ``seed``); returns the saved history."""
    model.fit(train_ds.repeat() if steps_per_epoch else train_ds, validation_data=val_ds,
              epochs=epochs, steps_per_epoch=steps_per_epoch, verbose=0, shuffle=False,
              callbacks=train.run_callbacks(model, run_name, **where) + list(callbacks))
    return train.saved_history(run_name)
