"""With CATDOG_DETERMINISTIC=1 and a seed, training repeats bit for bit.

Op determinism cannot be switched off again inside a process, so each run
is a fresh interpreter: the baseline and the augmented pipeline, one
smoke-sized epoch each, on a small split of toy images.
"""
import json
import os
import subprocess
import sys

import pytest

from catdog_lib import data

SCRIPT = """
import json, sys
from catdog_lib import augment, data, models
train_ds, val_ds, _ = data.load_datasets(sys.argv[1], batch_size=4)
losses = []
for model, ds in [(models.baseline_convnet(), train_ds),
                  (models.dropout_convnet(), augment.augment(train_ds, batch_size=4))]:
    history = model.fit(ds, validation_data=val_ds, epochs=1, verbose=0)
    losses += history.history["loss"] + history.history["val_loss"]
print(json.dumps(losses))
"""


@pytest.fixture
def small_split(kaggle_dir, tmp_path):
    return data.prepare_small_dataset(kaggle_dir, tmp_path / "small",
                                      sizes={"train": 8, "validation": 3, "test": 1}).dest


def losses(split, seed):
    env = {**os.environ, "CATDOG_PROFILE": "smoke", "CATDOG_SEED": str(seed),
           "CATDOG_DETERMINISTIC": "1"}
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(split)], env=env, capture_output=True,
                         text=True, timeout=600, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_same_seed_gives_identical_losses_and_another_seed_does_not(small_split):
    first, again, other = (losses(small_split, seed) for seed in (1, 1, 2))
    assert len(first) == 4
    assert first == again  # exactly, not approximately
    assert first != other  # the seed really drives the run
