"""fit records and resumes a run, and only the same run; evaluate computes the right numbers."""
import json
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from catdog_lib import config, models, train
from conftest import fit


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CATDOG_RUNS_DIR", str(tmp_path / "runs"))
    return tmp_path / "runs"


def tiny_data(n=16, batch=8, fail_after=None):
    """Random 150x150 photos; with ``fail_after``, the pipeline crashes after
    that many batches, as a real interruption would."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (n, 150, 150, 3)).astype("uint8")
    y = (np.arange(n) % 2).astype("float32")[:, None]

    def batches():
        for i in range(10**6):
            if fail_after is not None and i >= fail_after:
                raise RuntimeError("power cut")
            j = (i * batch) % n
            yield x[j:j + batch], y[j:j + batch]

    spec = (tf.TensorSpec((None, 150, 150, 3), tf.uint8), tf.TensorSpec((None, 1), tf.float32))
    train_ds = tf.data.Dataset.from_generator(batches, output_signature=spec)
    val_ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)
    return train_ds, val_ds


def test_a_run_writes_its_artifacts(runs_dir):
    keras.utils.set_random_seed(0)
    train_ds, val_ds = tiny_data()
    history = fit(models.baseline_convnet(precision="float32"), train_ds, val_ds, epochs=2,
                        run_name="a", steps_per_epoch=2)
    run = runs_dir / "a"
    assert sorted(p.name for p in run.iterdir()) == ["backup", "best.keras", "history.json",
                                                     "log.csv", "run.json"]
    assert json.loads((run / "history.json").read_text()) == history
    assert len(history["val_accuracy"]) == 2 and len(history["seconds"]) == 2
    assert history["updates"] == [2, 4]
    assert len((run / "log.csv").read_text().strip().splitlines()) == 3  # header + 2 epochs
    info = json.loads((run / "run.json").read_text())
    assert info["profile"] == config.profile()["name"] and info["tensorflow"] == tf.__version__
    assert info["keras"] == keras.__version__ and info["precision"] == "float32"
    assert info["model"] == "baseline_convnet" and info["seed"] == config.seed()
    assert keras.models.load_model(run / "best.keras").count_params() == 3_453_121


def test_an_interrupted_run_resumes(runs_dir, capsys):
    keras.utils.set_random_seed(0)
    model, ended = models.baseline_convnet(), []
    watch = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: ended.append(model.get_weights()))
    crashing, val_ds = tiny_data(fail_after=3)  # dies in the second epoch
    with pytest.raises(Exception, match="power cut"):
        fit(model, crashing, val_ds, epochs=3, run_name="r", steps_per_epoch=2, callbacks=[watch])
    saved = json.loads((runs_dir / "r" / "history.json").read_text())
    assert len(saved["loss"]) == 1 and len(ended) == 1

    resumed, started = models.baseline_convnet(), []
    watch = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: started.append((epoch, resumed.get_weights())))
    train_ds, val_ds = tiny_data()
    history = fit(resumed, train_ds, val_ds, epochs=3, run_name="r", steps_per_epoch=2,
                  callbacks=[watch])
    assert "Resuming r after epoch 1 (delete" in capsys.readouterr().out
    assert [epoch for epoch, _ in started] == [1, 2]  # epoch 1 is not trained again
    for mine, theirs in zip(started[0][1], ended[0], strict=True):
        np.testing.assert_array_equal(mine, theirs)  # and it starts where epoch 1 ended
    assert len(history["loss"]) == 3 and history["loss"][0] == saved["loss"][0]
    assert history["updates"] == [2, 4, 6]  # the optimizer's count went on where it stopped
    assert len((runs_dir / "r" / "log.csv").read_text().strip().splitlines()) == 4


def test_a_finished_run_is_restored_not_retrained(runs_dir):
    keras.utils.set_random_seed(0)
    train_ds, val_ds = tiny_data()
    first = models.baseline_convnet()
    fit(first, train_ds, val_ds, epochs=1, run_name="done", steps_per_epoch=1)
    again = models.baseline_convnet()
    history = fit(again, train_ds, val_ds, epochs=1, run_name="done", steps_per_epoch=1)
    assert len(history["loss"]) == 1
    for mine, theirs in zip(again.get_weights(), first.get_weights()):
        np.testing.assert_array_equal(mine, theirs)


@pytest.mark.parametrize("change, differs", [
    ({"seed": "2"}, "seed: saved 1, now 2"),
    ({"data": "other"}, "dataset: saved"),
    ({"model": "dropout"}, "model: saved 'baseline_convnet', now 'dropout_convnet'"),
    ({"precision": "mixed_bfloat16"}, "precision: saved 'float32', now 'mixed_bfloat16'"),
])
def test_resuming_a_different_run_is_refused(runs_dir, tmp_path, monkeypatch, change, differs):
    monkeypatch.setenv("CATDOG_SEED", "1")
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "manifest.csv").write_text("split,class,filename,sha256\n")
    train_ds, val_ds = tiny_data()
    fit(models.baseline_convnet(precision="float32"), train_ds, val_ds, epochs=1,
              run_name="toy-run", steps_per_epoch=1, data_dir=tmp_path / "toy")
    before = (runs_dir / "toy-run" / "run.json").read_text()
    if "seed" in change:
        monkeypatch.setenv("CATDOG_SEED", change["seed"])
    other = tmp_path / "real"
    other.mkdir()
    (other / "manifest.csv").write_text("split,class,filename,sha256\ntrain,cats,cat.0.jpg,ab\n")
    model = (models.dropout_convnet if "model" in change else models.baseline_convnet)(
        precision=change.get("precision", "float32"))
    with pytest.raises(train.RunMismatch, match=re.escape(differs)) as refused:
        fit(model, train_ds, val_ds, epochs=2, run_name="toy-run", steps_per_epoch=1,
                  data_dir=other if "data" in change else tmp_path / "toy")
    assert "Delete that folder to start over" in str(refused.value)
    assert (runs_dir / "toy-run" / "run.json").read_text() == before  # written once, kept true


def test_resuming_with_other_micro_batches_is_refused(runs_dir):
    """The README's advice for a dying kernel: more micro-batches. The saved
    optimizer counted 2 batches per update; going on at 4 would misplace every
    later update on its schedule and on the curves' axis."""
    train_ds, val_ds = tiny_data()
    fit(models.dropout_convnet(micro_batches=2, precision="float32"), train_ds, val_ds, epochs=1,
        run_name="micro", steps_per_epoch=2)
    differs = ("optimizer: saved 'RMSprop(learning_rate=0.0001), 2 batches per update', "
               "now 'RMSprop(learning_rate=0.0001), 4 batches per update'")
    with pytest.raises(train.RunMismatch, match=re.escape(differs)):
        fit(models.dropout_convnet(micro_batches=4, precision="float32"), train_ds, val_ds,
            epochs=2, run_name="micro", steps_per_epoch=4)


def test_a_run_saved_before_the_optimizer_was_recorded_still_resumes(runs_dir):
    train_ds, val_ds = tiny_data()
    fit(models.baseline_convnet(precision="float32"), train_ds, val_ds, epochs=1, run_name="old",
        steps_per_epoch=1)
    saved = runs_dir / "old" / "run.json"
    info = json.loads(saved.read_text())
    del info["optimizer"]
    saved.write_text(json.dumps(info))
    history = fit(models.baseline_convnet(precision="float32"), train_ds, val_ds, epochs=2,
                  run_name="old", steps_per_epoch=1)
    assert history["updates"] == [1, 2]


def test_a_run_started_on_another_cpu_is_named_for_the_benchmarks(runs_dir, capsys):
    train_ds, val_ds = tiny_data()
    assert train.machine_mismatch("moved") is None  # nothing started yet
    fit(models.baseline_convnet(precision="float32"), train_ds, val_ds, epochs=1,
        run_name="moved", steps_per_epoch=1)
    assert train.machine_mismatch("moved") is None  # started here
    saved = runs_dir / "moved" / "run.json"
    saved.write_text(json.dumps({**json.loads(saved.read_text()),
                                 "cpu": {**train.cpu(), "tag": "other-cpu-2cpu"}}))
    why = train.machine_mismatch("moved")
    assert "moved was started on other-cpu-2cpu" in why and train.cpu()["tag"] in why
    # A notebook's run still resumes on another machine.
    history = fit(models.baseline_convnet(precision="float32"), train_ds, val_ds, epochs=2,
                  run_name="moved", steps_per_epoch=1)
    assert history["updates"] == [1, 2] and "Resuming moved after epoch 1" in capsys.readouterr().out


def test_a_changed_network_is_refused_before_loading_weights(runs_dir):
    train_ds, val_ds = tiny_data()
    fit(models.baseline_convnet(), train_ds, val_ds, epochs=1, run_name="net",
              steps_per_epoch=1)
    smaller = keras.Sequential([keras.Input((150, 150, 3)), keras.layers.Flatten(),
                                keras.layers.Dense(1, activation="sigmoid")],
                               name="baseline_convnet")
    smaller.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
    with pytest.raises(train.RunMismatch, match="architecture: saved"):
        fit(smaller, train_ds, val_ds, epochs=2, run_name="net", steps_per_epoch=1)


def test_in_context_tells_a_chance_level_run_from_a_good_one():
    reference = train.reference_history("baseline")
    chance = train.in_context(0.503, {"updates": [3]}, reference)
    assert chance.startswith("Test accuracy 0.503: chance level (0.50)")
    assert "had made 100 by the end of its first epoch" in chance
    good = train.in_context(0.74, {"updates": [100, 200, 300]}, reference)
    assert good.startswith("Test accuracy 0.740: 24 points above chance (0.50).")
    # After 300 updates the reference had finished its third epoch.
    val_3 = reference["history"]["val_accuracy"][2]
    assert f"after as many, the reference run (the book's recipe on the real photos) stood at " \
        f"{val_3:.3f} validation accuracy" in good
    val = reference["history"]["val_accuracy"]
    assert good.endswith(f"peaked at {max(val):.3f} after {100 * (val.index(max(val)) + 1):,} "
                         f"(its best checkpoint scored "
                         f"{reference['test']['best_val_model']['accuracy']:.3f} on the test set).")


def test_evaluate_on_a_hand_made_case():
    # The "model" returns its input, so the input is the predicted P(dog).
    identity = keras.Sequential([keras.Input((1,)), keras.layers.Identity()])
    p = np.array([[0.9], [0.2], [0.7], [0.4], [0.99]], "float32")
    y = np.array([[1], [0], [0], [1], [0]], "float32")
    result = train.evaluate(identity, tf.data.Dataset.from_tensor_slices((p, y)).batch(2))
    # true cat: 0.2 right, 0.7 and 0.99 wrong; true dog: 0.9 right, 0.4 wrong
    np.testing.assert_array_equal(result["confusion"], [[1, 2], [1, 1]])
    assert result["accuracy"] == pytest.approx(2 / 5)
    expected_loss = float(keras.losses.BinaryCrossentropy()(y, p))
    assert result["loss"] == pytest.approx(expected_loss, rel=1e-4)
    assert [(label, round(prob, 2)) for _, label, prob in result["wrong"]] == \
        [(0, 0.99), (0, 0.7), (1, 0.4)]
    assert result["right"] == []
    result = train.evaluate(identity, tf.data.Dataset.from_tensor_slices((p, y)).batch(2),
                            n_wrong=1, n_right=2)
    assert [(label, round(prob, 2)) for _, label, prob in result["wrong"]] == [(0, 0.99)]
    assert [(label, round(prob, 2)) for _, label, prob in result["right"]] == [(0, 0.2), (1, 0.9)]


def test_scoring_model_after_model_logs_no_retracing_warning(caplog):
    # Each model traces its own predict step, and TensorFlow counts the traces
    # of all models' steps together: five models scored on a few batches each
    # made it warn of "retracing" in notebook 06's comparison table.
    ds = tf.data.Dataset.from_tensor_slices((np.zeros((4, 1), "float32"),
                                             np.zeros((4, 1), "float32"))).batch(2)
    with caplog.at_level("WARNING", logger="tensorflow"):
        for _ in range(6):
            train.evaluate(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]), ds)
    assert "retracing" not in caplog.text


def test_both_reference_runs_are_committed_and_complete():
    for name, epochs in (("baseline", 30), ("augmented", 100)):
        ref = train.reference_history(name)
        assert ref["epochs"] == epochs == config.PROFILES["full"][f"{name}_epochs"]
        assert all(len(curve) == epochs for curve in ref["history"].values())
        assert ref["data"].startswith("real photos")


def test_a_write_cut_short_by_a_full_disk_keeps_the_previous_history(runs_dir):
    import subprocess
    import sys

    path = runs_dir / "r" / "history.json"
    path.parent.mkdir(parents=True)
    before = {"loss": [0.7], "val_accuracy": [0.5]}
    path.write_text(json.dumps(before))
    # A real process whose files cannot grow past 64 bytes: the kernel's "disk full".
    code = ("import json, resource, signal, sys; from pathlib import Path; "
            "from catdog_lib import train; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
            "resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64)); "
            "train._write_run_file(Path(sys.argv[1]), {'loss': [0.7] * 100})")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
    assert done.returncode != 0 and "File too large" in done.stderr
    assert json.loads(path.read_text()) == before
    assert [p.name for p in path.parent.iterdir()] == ["history.json"]


@pytest.mark.parametrize("damage", ["cut", "a list"])
@pytest.mark.parametrize("name", ["history.json", "run.json"])
def test_a_damaged_run_file_is_named(runs_dir, name, damage):
    keras.utils.set_random_seed(0)
    train_ds, val_ds = tiny_data()
    model = models.baseline_convnet(precision="float32")
    fit(model, train_ds, val_ds, epochs=1, run_name="d", steps_per_epoch=1)
    path = runs_dir / "d" / name
    path.write_text(path.read_text()[:20] if damage == "cut" else "[]")
    with pytest.raises(train.DamagedRun, match=rf"runs/d/{name} cannot be read .*Move .*runs/d away"):
        train.run_callbacks(model, "d")
