"""Notebook 06's network and its ablation: each row is what it says, the cost
is counted right, and the final recipe trains, resumes and reloads in every
precision."""
import hashlib
import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from catdog_lib import augment, config, data, models, modern, train
from conftest import REPO, SMALL_SIZES, fit, tagged_sources


def build(row, precision="float32"):
    return modern.ablation_convnet(row, decay_steps=100, precision=precision)


def kinds(model):
    """How many layers of each type a model has."""
    counts = {}
    for layer in model.layers:
        counts[type(layer).__name__] = counts.get(type(layer).__name__, 0) + 1
    return counts


def test_flops_of_the_book_network_are_speed_pys():
    # benchmarks/speed.py counted these for the book's network by hand.
    counted = json.loads((REPO / "benchmarks" / "results" / "speed.json").read_text())
    assert models.flops_per_image(models.baseline_convnet(precision="float32")) == \
        counted["flops_per_image"]


def test_flops_of_each_kind_of_layer_by_hand():
    inputs = keras.Input((10, 10, 4))
    x = layers.Conv2D(8, 3)(inputs)                              # 8x8 outputs
    x = layers.SeparableConv2D(16, 3, padding="same")(x)         # 8x8 outputs
    x = layers.DepthwiseConv2D(3, depth_multiplier=2)(x)         # 6x6 outputs, 32 channels
    x = layers.Dense(5)(layers.GlobalAveragePooling2D()(x))
    flops = models.flops_per_image(keras.Model(inputs, x))
    conv = 2 * 64 * 9 * 4 * 8
    separable = 2 * 64 * (9 * 8 + 8 * 16)
    depthwise = 2 * 36 * 9 * 16 * 2
    dense = 2 * 32 * 5
    assert flops["forward"] == conv + separable + depthwise + dense
    # No gradient is needed for the input image: the first layer's backward
    # pass computes only its weights' gradient.
    assert flops["training"] == 3 * flops["forward"] - conv


def test_each_ablation_row_changes_one_thing():
    nets = {row: build(row) for row in modern.ABLATION}
    book, norm, pooled = nets["book"], nets["batch_norm"], nets["global_pooling"]
    assert book.count_params() == models.baseline_convnet().count_params() == 3_453_121
    assert kinds(norm)["BatchNormalization"] == 4
    # Batch norm makes the conv biases redundant: 4 x (gamma, beta, mean,
    # variance) per channel added, the conv biases dropped.
    assert norm.count_params() - book.count_params() == 3 * (32 + 64 + 128 + 128)
    assert "Flatten" not in kinds(pooled) and kinds(pooled)["GlobalAveragePooling2D"] == 1
    assert [l.units for l in pooled.layers if isinstance(l, layers.Dense)] == [1]
    assert kinds(nets["residual"])["Add"] == 3 and kinds(nets["residual"])["Conv2D"] == 1 + 6 + 3
    separable = kinds(nets["separable"])
    assert separable["SeparableConv2D"] == 6 and separable["Conv2D"] == 1 + 3
    assert separable == kinds(nets["wider"])
    widths = [l.filters for l in nets["wider"].layers if isinstance(l, layers.SeparableConv2D)]
    assert widths == [128, 128, 256, 256, 256, 256]
    for same in ("adamw_cosine", "stronger_augmentation"):
        assert [(type(l).__name__, l.count_params()) for l in nets[same].layers] == \
            [(type(l).__name__, l.count_params()) for l in nets["wider"].layers]
    deeper = kinds(nets["deeper"])
    assert deeper["Add"] == 4 and deeper["SeparableConv2D"] == 8 and deeper["Conv2D"] == 1 + 4
    widths = [l.filters for l in nets["deeper"].layers if isinstance(l, layers.SeparableConv2D)]
    assert widths == [128, 128, 256, 256, 256, 256, 512, 512]
    assert nets["deeper"].layers[-4].output.shape[1:] == (5, 5, 512)  # before global pooling
    assert [type(nets[row].optimizer).__name__ for row in modern.ABLATION] == \
        ["RMSprop"] * 6 + ["AdamW"] * 3
    assert modern.RECIPE == "stronger_augmentation" and nets[modern.RECIPE].name == "modern_convnet"
    for row in ("book", "stronger_augmentation"):
        model = modern.ablation_convnet(row, decay_steps=100, micro_batches=2, precision="float32")
        assert model.optimizer.gradient_accumulation_steps == 2


@pytest.mark.parametrize("row", [modern.RECIPE, "deeper"])
def test_the_recipe_and_its_candidate_cost_at_most_three_times_the_book_per_image(row):
    book = models.flops_per_image(models.baseline_convnet(precision="float32"))
    assert models.flops_per_image(build(row))["training"] <= 3 * book["training"]


def test_the_schedule_warms_up_then_decays_to_zero():
    schedule = build("adamw_cosine").optimizer._learning_rate  # over 100 updates (no public getter)
    rates = [float(schedule(step)) for step in range(101)]
    assert rates[0] == 0 and rates[5] == pytest.approx(modern.PEAK_LEARNING_RATE)
    assert max(rates) == pytest.approx(modern.PEAK_LEARNING_RATE)
    assert all(a <= b for a, b in zip(rates[:5], rates[1:6]))
    assert all(a >= b for a, b in zip(rates[5:], rates[6:]))
    assert rates[100] == pytest.approx(0, abs=1e-12)
    with pytest.raises(ValueError, match="decay_steps"):
        modern.ablation_convnet("adamw_cosine")
    with pytest.raises(ValueError, match="'nope' is not one of"):
        modern.ablation_convnet("nope")


def test_the_schedule_spans_the_updates_when_batches_are_accumulated():
    # Keras steps a schedule at every batch, accumulated or not: over 6
    # updates of 2 micro-batches the rate must still be well above 0 halfway.
    model = modern.ablation_convnet("adamw_cosine", decay_steps=6, micro_batches=2,
                                    precision="float32")
    images = np.zeros((2, 150, 150, 3), "uint8")
    labels = np.array([[0.0], [1.0]], "float32")
    rates = []
    for _ in range(12):
        model.train_on_batch(images, labels)
        rates.append(float(model.optimizer.learning_rate))
    assert int(model.optimizer.iterations) == 6
    assert rates[5] > 0.4 * modern.PEAK_LEARNING_RATE  # after 3 of 6 updates: halfway down
    assert rates[9] > 0  # after 5 of 6
    assert rates[11] == pytest.approx(0, abs=1e-9)


def deep_stack(residual, depth=12):
    """Notebook 06's picture of what the shortcuts carry: its own tagged cell, run here."""
    tagged = tagged_sources("06_a_modern_convnet.ipynb", "deep-stack")
    assert len(tagged) == 1
    namespace = {"keras": keras, "layers": layers}
    exec(tagged[0], namespace)
    return namespace["deep_stack"](residual, depth)


def test_gradient_norms_agree_with_a_finite_difference():
    keras.utils.set_random_seed(3)
    model = deep_stack(residual=True, depth=2)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, 64, 64, 3)).astype("float32")
    labels = np.array([[0.0], [1.0], [1.0], [0.0]])
    norms = modern.gradient_norms(model, images, labels)
    kernel = model.layers[2].kernel  # the first Conv2D
    with tf.GradientTape() as tape:
        loss = keras.ops.mean(keras.losses.binary_crossentropy(labels, model(images)))
    direction = tape.gradient(loss, kernel) / norms[0]
    # Moving the kernel a little along its gradient changes the loss by the
    # gradient's norm times the step.
    step, before = 1e-3, float(loss)
    kernel.assign_add(step * direction)
    after = float(keras.ops.mean(keras.losses.binary_crossentropy(labels, model(images))))
    assert (after - before) / step == pytest.approx(norms[0], rel=0.05)


def test_shortcuts_carry_the_gradient_the_plain_stack_loses():
    images = np.random.default_rng(0).integers(0, 256, (8, 64, 64, 3)).astype("float32")
    labels = (np.arange(8) % 2).astype("float32")[:, None]
    norms = {}
    for residual in (False, True):
        keras.utils.set_random_seed(0)
        norms[residual] = modern.gradient_norms(deep_stack(residual), images, labels)
    assert len(norms[False]) == len(norms[True]) == 13
    assert all(r > 100 * p for p, r in zip(norms[False], norms[True]))


def test_stronger_augmentation_keeps_pixels_in_range_and_only_trains():
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 256, (6, 150, 150, 3)).astype("uint8")
    augmentation = augment.stronger_augmentation(seed=1)
    out = augmentation(batch, training=True).numpy()
    one = augmentation(batch[0], training=True).numpy()
    assert out.shape == batch.shape and one.shape == batch.shape[1:]
    assert out.min() >= 0 and out.max() <= 255 and out.dtype == np.float32
    assert not np.allclose(out, augmentation(batch, training=True).numpy())  # new draws each call
    np.testing.assert_array_equal(augmentation(batch, training=False).numpy(), batch)
    # Same seed, same draws.
    again = augment.stronger_augmentation(seed=1)(batch, training=True).numpy()
    np.testing.assert_allclose(again, out, atol=1e-3)
    # Brightness and contrast move a flat grey photo's mean and spread; the
    # book's geometric transforms alone would not.
    grey = np.full((64, 150, 150, 3), 128, "uint8")
    means = augmentation(grey, training=True).numpy().mean(axis=(1, 2, 3))
    assert means.std() > 5


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16", "mixed_float16"])
def test_the_final_recipe_trains_resumes_and_reloads(precision, kaggle_dir, tmp_path, monkeypatch,
                                                      capsys):
    monkeypatch.setenv("CATDOG_RUNS_DIR", str(tmp_path / "runs"))
    prepared = data.prepare_small_dataset(kaggle_dir, tmp_path / "small", sizes=SMALL_SIZES)
    train_ds, val_ds, test_ds = data.load_datasets(prepared.dest, batch_size=4)
    augmented = augment.augment(train_ds, augment.stronger_augmentation(seed=1), batch_size=4)

    def model():  # 2 micro-batches of 4 per update, as notebook 06 feeds 2 of 16
        return modern.ablation_convnet(modern.RECIPE, decay_steps=6, micro_batches=2,
                                       precision=precision)

    first = model()
    assert first.get_layer(index=2).dtype_policy.name == precision
    fit(first, augmented, val_ds, epochs=1, run_name="modern", steps_per_epoch=4,
        data_dir=prepared.dest)
    history = fit(model(), augmented, val_ds, epochs=3, run_name="modern", steps_per_epoch=4,
                  data_dir=prepared.dest)
    assert "Resuming modern after epoch 1" in capsys.readouterr().out
    assert np.isfinite(history["loss"]).all()
    if precision == "mixed_float16":
        # The loss scaler skips the updates whose float16 gradients overflow
        # while it finds its scale; batch norm makes that likely at first.
        assert 0 < history["updates"][0] < history["updates"][1] < history["updates"][2] <= 6
    else:
        assert history["updates"] == [2, 4, 6]
    best = train.load_best("modern")
    scores = train.evaluate(best, test_ds)
    assert np.isfinite(scores["loss"]) and scores["confusion"].sum() == 6
    table = train.compare_on_test([("06", "modern", "modern"), ("03", "absent", "baseline")],
                                  test_ds, prepared.dest)
    assert f"| 06 | {scores['accuracy']:.3f} (a run of {history['updates'][-1]:,} updates) |" in table
    assert "| 03 | not run with this profile |" in table
    # A run on other data is not scored against this test set.
    other = data.prepare_small_dataset(kaggle_dir, tmp_path / "other",
                                       sizes={"train": 5, "validation": 3, "test": 3})
    assert "| 06 | trained on other data than this test set |" in train.compare_on_test(
        [("06", "modern", "modern")], test_ds, other.dest)


def images_of(ds):
    """The sha256 of every image of a dataset of ``(images, labels)`` batches, sorted."""
    return sorted(hashlib.sha256(image.numpy().tobytes()).hexdigest()
                  for images, _ in ds for image in images)


def test_the_benchmark_trains_a_row_and_tabulates_it(kaggle_dir, tmp_path, monkeypatch, capsys):
    sys.path.insert(0, str(REPO / "benchmarks"))
    import modern_convnet  # benchmarks/modern_convnet.py

    monkeypatch.setenv("CATDOG_RUNS_DIR", str(tmp_path / "runs"))
    # As its docstring runs it. In mixed_float16 the loss scaler skips the
    # updates that overflow, so the count below would be a matter of chance
    # (the final recipe's test checks that case).
    monkeypatch.setenv("CATDOG_PRECISION", "float32")
    prepared = data.prepare_small_dataset(kaggle_dir, tmp_path / "small", sizes=SMALL_SIZES)
    scored = []  # the images of each set the benchmark scores a model on, in any order
    evaluate = train.evaluate
    def recording(model, ds, *args, **kwargs):
        scored.append(images_of(ds))
        return evaluate(model, ds, *args, **kwargs)
    monkeypatch.setattr(train, "evaluate", recording)
    # 12 training images make 1 update of up to 32 an epoch, fed as 2 micro-batches.
    result = modern_convnet.run_one("stronger_augmentation", 2, 1, prepared, final=True)
    assert result["history"]["updates"] == [1, 2] and result["updates_per_epoch"] == 1
    assert result["info"]["model"] == "modern_convnet" and result["info"]["cpu"] == train.cpu()
    best = train.load_best("modern-stronger_augmentation-e2-seed1")
    train_ds, _, test_ds = data.load_datasets(prepared.dest)
    assert result["test"]["best_val_model"]["accuracy"] == pytest.approx(
        train.evaluate(best, test_ds)["accuracy"])
    assert sum(map(sum, result["test"]["final_model"]["confusion"])) == 6
    # Each model, the checkpoint then the final one, meets the test set and
    # the 12 training photos as they are, without augmentation.
    assert scored[:4] == [images_of(test_ds), images_of(train_ds)] * 2
    assert result["train_accuracy_unaugmented"]["best_val_model"] == pytest.approx(
        train.evaluate(best, train_ds)["accuracy"])
    book = modern_convnet.run_one("book", 2, 1, prepared, final=False)
    assert "test" not in book  # the ablation reads the validation set only
    final = modern_convnet.final_table([result, book])
    last = sum(result["history"]["val_accuracy"]) / 2  # fewer than 10 epochs: all of them
    assert f"| notebook 06's, 2 epochs | 1 | {result['best_val_accuracy']:.3f} | {last:.3f} |" in final
    plain = result["train_accuracy_unaugmented"]["final_model"]
    assert f"{result['test']['final_model']['accuracy']:.3f} | {plain:.3f} |" in final
    ablation = modern_convnet.ablation_table([result, book])
    assert f"| `book` | 3,453,121 | 1.38 G (1.00×) |" in ablation
    assert f"{book['best_val_accuracy']:.3f}, seed 1 |" in ablation
    assert "| `residual` |" in ablation and ablation.count("not run") == 8
    runs = modern_convnet.runs_table([book, result]).splitlines()
    assert runs[2].startswith(f"| `stronger_augmentation`, 2 epochs, seed 1, final | "
                              f"{result['best_val_accuracy']:.3f} ({result['best_epoch']}) | "
                              f"{last:.3f} | {result['final_train_accuracy']:.3f}, ")
    assert runs[3].startswith("| `book`, 2 epochs, seed 1 |") and len(runs) == 4
    # The row after the recipe, trained as far, gets a line of its own.
    candidate = {**result, "row": "deeper"}
    both = modern_convnet.final_table([candidate, result, book])
    assert both.index("| notebook 06's, 2 epochs | 1 |") < both.index(
        "| `deeper` (ablation row), 2 epochs | 1 |")
    # The CPU changes between work sessions: seeds trained on two machines
    # still make one row (one column in the ablation) that names both.
    xeon = {**result["info"]["cpu"], "model": "Intel Xeon", "flags": ["amx_bf16"], "tag": "xeon"}
    def on_xeon(run):
        return {**run, "seed": 2, "info": {**run["info"], "seed": 2, "cpu": xeon}}
    both = modern_convnet.final_table([result, on_xeon(result), book])
    assert both.count("| notebook 06's") == 1 and "| notebook 06's, 2 epochs | 2 |" in both
    assert f"{train.cpu_label(result['info']['cpu'])}; Intel Xeon (amx_bf16; 2 cores)" in both
    # Runs made before the unaugmented training accuracy was measured say so.
    older = {k: v for k, v in result.items() if k != "train_accuracy_unaugmented"}
    assert f"| {plain:.3f}, 1 of 2 runs |" in modern_convnet.final_table([result, on_xeon(older)])
    assert " | not measured | " in modern_convnet.final_table([older])
    ablation = modern_convnet.ablation_table([result, book, on_xeon(book)])
    assert ablation.count("best validation accuracy after 2 epochs") == 1
    assert "seeds 1, 2 |" in ablation and ablation.count("not run") == 8
    # A machine whose speed file predates a network says so rather than
    # borrowing the row above's time.
    speed = json.loads((modern_convnet.BOOK_RUNS / "modern_speed_amd-epyc-avx2-2cpu.json").read_text())
    del speed["rows"]["deeper"]
    (tmp_path / "modern_speed_older.json").write_text(json.dumps(speed))
    monkeypatch.setattr(modern_convnet, "BOOK_RUNS", tmp_path)
    assert "| `deeper` | 903,681 | 2.33 G (1.69×) | not timed on this machine |" in \
        modern_convnet.ablation_table([book])
    # A run folder started on another machine is not resumed here.
    run_json = tmp_path / "runs" / "modern-book-e2-seed1" / "run.json"
    run_json.write_text(json.dumps({**json.loads(run_json.read_text()),
                                    "cpu": {"tag": "another-cpu"}}))
    with pytest.raises(SystemExit, match="was started on another-cpu"):
        modern_convnet.run_one("book", 2, 1, prepared, final=False)
    # A fresh checkout has no runs/ folder: a row measured on this machine is
    # skipped before any data is prepared (the source given does not exist).
    monkeypatch.setattr(modern_convnet, "RESULTS", tmp_path / "results")
    measured = tmp_path / "results" / f"book_e2_seed1_{train.cpu()['tag']}.json"
    measured.parent.mkdir()
    measured.write_text(json.dumps(book))
    capsys.readouterr()
    modern_convnet.main(["--rows", "book", "--epochs", "2", "--seeds", "1",
                         "--source", str(tmp_path / "nowhere")])
    assert "book seed 1: already measured on this machine" in capsys.readouterr().out
    assert json.loads(measured.read_text()) == json.loads(json.dumps(book))


def test_the_runs_table_averages_the_last_three_blocks_of_ten_epochs(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import modern_convnet  # benchmarks/modern_convnet.py

    # Epoch i scores i / 100: the blocks 71-80, 81-90 and 91-100 average 0.755, 0.855, 0.955.
    run = {"history": {"val_accuracy": [i / 100 for i in range(1, 101)]}}
    assert modern_convnet._blocks_of_ten(run) == "0.755, 0.855, 0.955"
    run["history"]["val_accuracy"] = run["history"]["val_accuracy"][:30]
    assert modern_convnet._blocks_of_ten(run) == "0.055, 0.155, 0.255"


def test_the_readme_tables_are_what_the_benchmark_prints():
    printed = subprocess.run([sys.executable, "benchmarks/modern_convnet.py", "--table"],
                             cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert printed.strip() and printed.strip() in (REPO / "README.md").read_text()


def test_each_committed_result_names_its_row_seed_budget_and_machine():
    results = REPO / "benchmarks" / "results"
    for path in sorted((results / "modern").glob("*.json")):
        result = json.loads(path.read_text())
        info = result["info"]
        assert path.stem == \
            f"{result['row']}_e{result['epochs']}_seed{result['seed']}_{info['cpu']['tag']}"
        assert info["seed"] == result["seed"] and len(result["history"]["loss"]) == result["epochs"]
        assert ("test" in result) == result["final"]  # the test set only for final models
    speeds = sorted(results.glob("modern_speed_*.json"))
    assert speeds  # the ablation table's time column
    for path in speeds:
        speed = json.loads(path.read_text())
        assert path.stem == f"modern_speed_{speed['machine']['cpu']['tag']}"
        assert speed["machine"]["cpu"]["flags"] is not None
        assert set(speed["rows"]) <= set(modern.ABLATION) and speed["rows"]["book"]["seconds_over_book"] == 1
