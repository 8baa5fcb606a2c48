"""Fixtures: small Kaggle-style folders made from real toy images, and the
paths of the shared real photos when this machine has them."""
import hashlib
from pathlib import Path

import pytest

from catdog_lib import config, toy

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
REAL_TRAIN = SHARED / "dogs-vs-cats" / "train"
ODD_IMAGES = SHARED / "odd-images"
SMALL_SIZES = {"train": 6, "validation": 3, "test": 3}


def tree_hashes(folder):
    """sha256 of every file under ``folder``, to prove a source is untouched."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


@pytest.fixture
def kaggle_dir(tmp_path):
    """A Kaggle-layout folder with 12 toy images per class."""
    return toy.make_toy_set(tmp_path / "kaggle" / "train", per_class=12, workers=1)


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    """Point the data root at a fresh temporary folder."""
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setattr(config, "DATA_DIR", root)
    return root
