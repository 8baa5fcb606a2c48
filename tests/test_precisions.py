"""Every precision path runs on every machine.

``CATDOG_PRECISION`` forces float32, mixed_bfloat16 or mixed_float16 (Colab's
T4); where the CPU lacks 16-bit arithmetic TensorFlow emulates it, so these
paths are tested here whatever the hardware, not only where ``auto`` picks them.
"""
import json
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from catdog_lib import augment, cli, config, data, models, train
from conftest import REPO, SMALL_SIZES, fit

PRECISIONS = ["float32", "mixed_bfloat16", "mixed_float16"]


@pytest.fixture
def forced(request, monkeypatch, tmp_path):
    monkeypatch.setenv("CATDOG_PRECISION", request.param)
    monkeypatch.setenv("CATDOG_RUNS_DIR", str(tmp_path / "runs"))
    return request.param


def crash_after(ds, batches):
    """``ds`` that dies after ``batches`` batches, as a power cut would."""
    spec = ds.element_spec

    def gen():
        for i, batch in enumerate(ds.repeat()):
            if i >= batches:
                raise RuntimeError("power cut")
            yield batch

    return tf.data.Dataset.from_generator(gen, output_signature=spec)


@pytest.mark.parametrize("forced", PRECISIONS, indirect=True)
def test_train_evaluate_reload_and_resume(forced, kaggle_dir, tmp_path, capsys):
    prepared = data.prepare_small_dataset(kaggle_dir, tmp_path / "small", sizes=SMALL_SIZES)
    train_ds, val_ds, test_ds = data.load_datasets(prepared.dest, batch_size=4)

    baseline = models.baseline_convnet()
    assert baseline.dtype_policy.name == baseline.get_layer("conv2d_1").dtype_policy.name == forced
    history = fit(baseline, train_ds, val_ds, epochs=1, run_name="baseline",
                        steps_per_epoch=2, data_dir=prepared.dest)
    assert np.isfinite(history["loss"]).all()

    model = models.dropout_convnet(micro_batches=2)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer) == \
        (forced == "mixed_float16")  # float16 needs its loss scaled; bfloat16 does not
    augmented = augment.augment(train_ds, batch_size=4)
    images, _ = next(iter(augmented))
    assert images.dtype == tf.float32  # the data stay float32; only the network is not

    with pytest.raises(Exception, match="power cut"):
        fit(model, crash_after(augmented, 5), val_ds, epochs=3, run_name="augmented",
                  steps_per_epoch=4, data_dir=prepared.dest)
    resumed = models.dropout_convnet(micro_batches=2)
    history = fit(resumed, augmented, val_ds, epochs=3, run_name="augmented",
                        steps_per_epoch=4, data_dir=prepared.dest)
    assert "Resuming augmented after epoch 1 (delete" in capsys.readouterr().out
    assert len(history["loss"]) == 3 and np.isfinite(history["loss"]).all()
    assert history["updates"] == [2, 4, 6]  # 4 micro-batches of 4 make 2 updates an epoch

    run = config.runs_dir() / "augmented"
    assert json.loads((run / "run.json").read_text())["precision"] == forced
    best = train.load_best("augmented")
    assert best.get_layer("dense_1").dtype_policy.name == forced
    result, reloaded = train.evaluate(resumed, test_ds), train.evaluate(best, test_ds)
    assert 0 <= result["accuracy"] <= 1 and np.isfinite(reloaded["loss"])
    assert reloaded["confusion"].sum() == sum(prepared.counts["test"].values())


# nbval already runs every notebook in auto's precision; this runs 04 in the
# other two, so each precision runs a training notebook end to end on any
# machine. 03's network and 06's train, resume, reload and evaluate in every
# precision above and in test_modern.py, which keeps make test within its time.
@pytest.mark.parametrize("forced", [p for p in PRECISIONS if p != models.compute_policy("auto")],
                         indirect=True)
def test_smoke_notebook_04_runs_in_the_other_precisions(forced):
    data.prepare_small_dataset("toy")
    nb, _, _, error = cli.execute(REPO / "notebooks" / "04_augmentation_and_dropout.ipynb")
    assert error is None, error
    printed = "".join(o.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                      for o in cell.outputs)
    assert re.search(rf"Training on \w+ with precision {forced} \(.+\), profile smoke", printed)
