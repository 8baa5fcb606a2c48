"""Keep a record of training, resume after an interruption, and evaluate.

The notebooks train with Keras' own ``model.fit``; ``run_callbacks`` gives
it the callbacks that save everything about a run under ``runs/<run_name>/``
(the folder ``CATDOG_RUNS_DIR`` names), Keras' own where Keras has one:

- ``run.json``: what the run is (model, precision, data, seed, profile) and
  what ran it (device, library versions), written once when it starts;
- ``history.json``: loss, accuracy, weight updates and seconds per epoch,
  rewritten after every epoch;
- ``log.csv``: the same, from ``CSVLogger``;
- ``best.keras``: the model with the best validation accuracy so far (``ModelCheckpoint``);
- ``backup/``: weights and optimizer after the last finished epoch (``BackupAndRestore``).

Training again with the same ``run_name`` resumes after the last finished
epoch, but only when it is the same run: a different model, precision,
dataset, seed or profile stops with a message saying what differs.
"""
import hashlib
import json
import logging
import os
import platform
import re
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from . import config, toy


PRECISION_WORDS = {
    "float32": "32-bit floats throughout",
    "mixed_bfloat16": "mixed precision: 16-bit bfloat16 arithmetic with 32-bit weights, fast "
                      "where the chip has bfloat16 units",
    "mixed_float16": "mixed precision: 16-bit float16 arithmetic with 32-bit weights, the loss "
                     "scaled so small gradients survive; fast on GPUs",
}


class RunMismatch(Exception):
    """A run folder holds a different run from the one asked for."""


class DamagedRun(Exception):
    """A run folder's ``run.json`` or ``history.json`` cannot be read."""


def read_run_file(path):
    """A run's ``run.json`` or ``history.json``; a ``DamagedRun`` naming it if unreadable."""
    try:
        value = json.loads(path.read_text())
        if not isinstance(value, dict):
            raise ValueError(f"it holds a JSON {type(value).__name__}, not the run's fields")
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise DamagedRun(f"{config.display_path(path)} cannot be read ({err}). Move "
                         f"{config.display_path(path.parent)} away to start that run over.") from None
    return value


def _write_run_file(path, value):
    # A full disk or a kill mid-write leaves the previous version, never a cut one.
    toy.write_whole(path, lambda f: f.write(json.dumps(value, indent=1).encode()))


def device_name():
    """``"GPU (name)"`` when TensorFlow sees a GPU, else ``"CPU"``."""
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU"
    return f"GPU ({tf.config.experimental.get_device_details(gpus[0]).get('device_name', gpus[0].name)})"


def gpu_available():
    """Whether TensorFlow sees a GPU (on Colab, one must be attached)."""
    return bool(tf.config.list_physical_devices("GPU"))


def dataset_id(folder):
    """The sha256 of a prepared split's manifest, which lists every image's
    hash, or ``"none"`` for data that is not a prepared split."""
    manifest = Path(folder) / "manifest.csv" if folder else None
    if manifest is None or not manifest.is_file():
        return "none"
    return hashlib.sha256(manifest.read_bytes()).hexdigest()


def run_identity(model, data_dir=None, seed=None):
    """What makes a run this run: resuming needs every field to agree.

    Parameters
    ----------
    model : keras.Model
    data_dir : path, optional
        The prepared split the training data come from.
    seed : int, optional
        The seed the data order and augmentation were drawn with (default
        ``CATDOG_SEED``).

    Returns
    -------
    dict
        ``model``, ``architecture`` (a hash of the layers, their output
        shapes and sizes),
        ``input_shape``, ``precision`` (the model's own dtype policy),
        ``dataset`` (``dataset_id``), ``seed``, ``profile`` and
        ``optimizer`` (``describe_optimizer``).
    """
    # Layer kinds, output shapes and sizes: what the saved weights must fit.
    layers = [[type(layer).__name__, list(layer.output.shape[1:]), layer.count_params()]
              for layer in model.layers]
    return {"model": model.name,
            "architecture": hashlib.sha256(json.dumps(layers).encode()).hexdigest()[:16],
            "input_shape": list(model.input_shape[1:]), "precision": model.dtype_policy.name,
            "dataset": dataset_id(data_dir), "seed": config.seed() if seed is None else seed,
            "profile": config.profile()["name"], "optimizer": describe_optimizer(model.optimizer)}


def describe_optimizer(optimizer):
    """The optimizer, its learning rate or schedule, and its batches per update.

    A resumed run goes on counting the saved optimizer's batches, so a run
    compiled with another schedule or number of micro-batches is another run.

    Parameters
    ----------
    optimizer : keras.optimizers.Optimizer
        A compiled model's ``model.optimizer``.

    Returns
    -------
    str

    Example
    -------
    >>> import keras
    >>> from catdog_lib import train
    >>> train.describe_optimizer(keras.optimizers.RMSprop(learning_rate=1e-4))
    'RMSprop(learning_rate=0.0001), 1 batch per update'
    """
    # mixed_float16 wraps the optimizer in a LossScaleOptimizer; the run's
    # precision already says so.
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    settings = optimizer.get_config()
    rate = settings["learning_rate"]
    if isinstance(rate, dict):  # a schedule, serialized
        rate = rate["class_name"] + "(" + ", ".join(
            f"{key}={value}" for key, value in rate["config"].items() if key != "name") + ")"
    else:
        rate = f"{rate:.3g}"
    batches = settings["gradient_accumulation_steps"] or 1
    return f"{type(optimizer).__name__}(learning_rate={rate}), " \
           f"{batches} batch{'es' if batches > 1 else ''} per update"


def cpu():
    """The CPU's model name, and which of the flags that decide its training
    speed it has (``models.choose_policy`` reads the bfloat16 ones)."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    field = {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in lines)}
    flags = field.get("flags", "").split()
    model = field.get("model name") or platform.processor() or platform.machine()
    flags = [f for f in ("fma", "avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    # For file names: one machine's benchmark results never replace another's.
    tag = "-".join([re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-"), *flags[-1:],
                    f"{os.cpu_count()}cpu"])
    return {"model": model, "flags": flags, "count": os.cpu_count(), "tag": tag}


def cpu_label(cpu):
    """``cpu()``'s record as the tables print it: "AMD EPYC (fma, avx2; 2 cores)".

    Example
    -------
    >>> cpu_label({"model": "Intel Xeon", "flags": ["avx2", "amx_bf16"], "count": 2})
    'Intel Xeon (avx2, amx_bf16; 2 cores)'
    >>> cpu_label({"model": "Apple M2", "flags": [], "count": 8})
    'Apple M2 (8 cores)'
    """
    flags = ", ".join(cpu["flags"]) + "; " if cpu["flags"] else ""
    return f"{cpu['model']} ({flags}{cpu['count']} cores)"


def machine_mismatch(run_name):
    """Why a benchmark must not resume ``runs/<run_name>`` here, or None.

    A benchmark's seconds per epoch are one machine's: a run folder started
    on another CPU (``run.json`` records its tag) would mix two machines. A
    notebook may resume anywhere; the benchmarks call this first.

    Example
    -------
    >>> machine_mismatch("a-run-that-was-never-started") is None
    True
    """
    run = config.runs_dir() / run_name / "run.json"
    if not run.exists():
        return None
    started_on = read_run_file(run).get("cpu", {}).get("tag")
    if started_on == cpu()["tag"]:
        return None
    return (f"{config.display_path(run.parent)} was started on {started_on or 'an unrecorded CPU'},"
            f" not this machine ({cpu()['tag']}): its seconds per epoch would mix two machines."
            " Move the folder away to start over here.")


def run_info(model, data_dir=None, seed=None):
    """``run_identity`` plus what ran it, so a saved result can be explained later."""
    return {**run_identity(model, data_dir, seed), "device": device_name(), "cpu": cpu(),
            "python": sys.version.split()[0], "platform": platform.platform(),
            "tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__}


def _check_same_run(run_dir, identity):
    """Stop before any weights are loaded when ``run_dir`` holds another run."""
    saved = read_run_file(run_dir / "run.json")
    # A field an older version did not record is not compared.
    differs = [f"{key}: saved {saved[key]!r}, now {value!r}"
               for key, value in identity.items() if key in saved and saved[key] != value]
    if differs:
        raise RunMismatch(
            f"{config.display_path(run_dir)} holds a different run ({'; '.join(differs)}). "
            f"Delete that folder to start over, or choose another run_name.")


class _SaveHistory(keras.callbacks.Callback):
    """Append each finished epoch, its wall time (``seconds``) and the weight
    updates made so far (``updates``) to history.json, so an interrupted run
    keeps its curves and a short run can be placed on a long one."""

    def __init__(self, path, history):
        super().__init__()
        self.path, self.history = path, history

    def on_epoch_begin(self, epoch, logs=None):
        # An interruption between this file and the backup leaves at most one
        # epoch here that the backup does not hold: it is trained again.
        for values in self.history.values():
            del values[epoch:]
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        # With micro-batches, the optimizer counts updates, not batches.
        logs = {**(logs or {}), "seconds": time.perf_counter() - self.started,
                "updates": int(self.model.optimizer.iterations)}
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value) if key != "updates" else value)
        _write_run_file(self.path, self.history)


def run_callbacks(model, run_name, data_dir=None, seed=None):
    """The callbacks that record a run and resume it: pass them to ``model.fit``.

    Checks that ``runs/<run_name>/`` holds this run or none (see the module
    docstring), writes ``run.json`` for a new run, and says whether training
    resumes.

    Parameters
    ----------
    model : keras.Model
        The compiled model about to be trained.
    run_name : str
        The folder under ``CATDOG_RUNS_DIR`` (default ``runs/``).
    data_dir : path, optional
        The prepared split the training data come from, recorded in the run's
        identity (default ``data.prepared_dir()``, where ``load_datasets``
        reads by default).
    seed : int, optional
        The seed the datasets were shuffled and augmented with, recorded in
        the run's identity (default ``CATDOG_SEED``).

    Returns
    -------
    list of keras.callbacks.Callback
        ``CSVLogger``, ``ModelCheckpoint`` (best.keras), the history writer
        and ``BackupAndRestore``, in that order. ``saved_history(run_name)``
        then gives the whole history, resumed epochs included.

    Raises
    ------
    RunMismatch
        When ``run_name`` holds a run of another model, precision, dataset,
        seed, profile or optimizer.

    Example
    -------
    >>> from catdog_lib import models, train
    >>> model = models.baseline_convnet()
    >>> model.fit(train_ds, validation_data=val_ds, epochs=3,
    ...           callbacks=train.run_callbacks(model, "example"))  # doctest: +SKIP
    """
    from . import data

    run_dir = config.writable_dir("CATDOG_RUNS_DIR") / run_name
    data_dir = data.prepared_dir() if data_dir is None else data_dir
    identity = run_identity(model, data_dir, seed)
    backup = run_dir / "backup"
    if (run_dir / "run.json").exists():
        _check_same_run(run_dir, identity)
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        _write_run_file(run_dir / "run.json", run_info(model, data_dir, seed))
    history = (saved_history(run_name) if backup.exists() else None) or {}
    done = len(history.get("loss", []))
    if done:
        print(f"Resuming {run_name} after epoch {done} "
              f"(delete {config.display_path(run_dir)} to start over).")
    print(f"Training on {device_name()} with precision {identity['precision']} "
          f"({PRECISION_WORDS[identity['precision']]}), profile {identity['profile']}.")
    best = keras.callbacks.ModelCheckpoint(run_dir / "best.keras", monitor="val_accuracy",
                                           save_best_only=True)
    if done:  # so a worse first epoch after resuming does not replace the best model
        best.best = max(history["val_accuracy"])
    # The history writer comes before the backup, so a run killed between the
    # two has at most one epoch too many in history.json, which it trims.
    return [keras.callbacks.CSVLogger(str(run_dir / "log.csv"), append=done > 0), best,
            _SaveHistory(run_dir / "history.json", history),
            keras.callbacks.BackupAndRestore(str(backup), delete_checkpoint=False)]


def load_best(run_name):
    """The best-validation model a run saved (``best.keras``), to predict with."""
    # compile=False: only predictions are needed, and a mixed_float16
    # model's optimizer state would not load into a plain one.
    return keras.models.load_model(config.runs_dir() / run_name / "best.keras", compile=False)


def evaluate(model, test_ds, n_wrong=8, n_right=0):
    """Test-set loss and accuracy, the confusion matrix, and the worst mistakes.

    Parameters
    ----------
    model : keras.Model
    test_ds : tf.data.Dataset
        Unshuffled batches of ``(images, labels)``.
    n_wrong : int
        How many of the most confidently wrong images to return.
    n_right : int
        How many of the most confidently right images of each class to return.

    Returns
    -------
    dict
        ``loss``, ``accuracy``, ``confusion`` (2x2 array: rows are the true
        class cat, dog; columns the predicted class), ``wrong``: a list
        of ``(image, true_label, p_dog)`` sorted from most confident down,
        and ``right``: the same for the right answers, cats first.

    Example
    -------
    >>> from catdog_lib import train
    >>> result = train.evaluate(model, test_ds)  # doctest: +SKIP
    """
    tensorflow_log = logging.getLogger("tensorflow")
    tensorflow_log.addFilter(_expected_retracing)
    try:
        return _evaluate(model, test_ds, n_wrong, n_right)
    finally:
        tensorflow_log.removeFilter(_expected_retracing)


def _expected_retracing(record):
    """Each model traces its own predict step once, but TensorFlow counts the
    traces of every model's step together: scoring a few models on a few
    batches each makes it warn of retracing, which here is by design."""
    return "triggered tf.function retracing" not in record.getMessage()


def _evaluate(model, test_ds, n_wrong, n_right):
    # Only the images asked for are kept, so evaluating never holds a
    # second copy of the test set in memory.
    labels, probs = [], []
    wrong, right = [], {0: [], 1: []}  # (confidence, image, true label, p_dog)
    for x, y in test_ds:
        truth = y.numpy().ravel().astype(int)
        p_dog = np.asarray(model.predict_on_batch(x), dtype="float64").ravel()
        x = x.numpy()  # indexing a NumPy array is cheap; a tensor's, image by image, is not
        labels.append(truth)
        probs.append(p_dog)
        for i in range(len(truth)):
            confidence = abs(p_dog[i] - 0.5)
            if (p_dog[i] > 0.5) != truth[i]:
                wrong = _keep(wrong, (confidence, x[i], truth[i], p_dog[i]), n_wrong)
            else:
                right[truth[i]] = _keep(right[truth[i]], (confidence, x[i], truth[i], p_dog[i]),
                                        n_right)
    labels, probs = np.concatenate(labels), np.concatenate(probs)
    eps = 1e-7
    clipped = np.clip(probs, eps, 1 - eps)
    loss = float(-np.mean(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped)))
    predicted = (probs > 0.5).astype(int)
    confusion = np.zeros((2, 2), dtype=int)
    np.add.at(confusion, (labels, predicted), 1)
    return {"loss": loss, "accuracy": float(np.mean(predicted == labels)), "confusion": confusion,
            "wrong": _images(wrong), "right": _images(right[0] + right[1])}


def _images(kept):
    return [(image.copy(), int(label), float(p_dog)) for _, image, label, p_dog in kept]


def _keep(kept, candidate, n):
    """``kept`` with ``candidate`` added, the ``n`` most confident, most confident first."""
    return sorted([*kept, candidate], key=lambda c: -c[0])[:n]


def saved_history(run_name):
    """The history a finished or interrupted run saved, or None."""
    path = config.runs_dir() / run_name / "history.json"
    return read_run_file(path) if path.exists() else None


def reference_history(name):
    """A committed reference run (``"baseline"``, ``"augmented"`` or ``"modern"``) on the real photos.

    Returns
    -------
    dict or None
        ``{"history": {...}, "test": {...}, "info": {...}}``, or None when
        no reference run of that name has been committed. Its history holds
        ``updates``, the weight updates made by the end of each epoch, as a
        history from ``run_callbacks`` does.

    Example
    -------
    >>> from catdog_lib import train
    >>> train.reference_history("baseline")["history"]["updates"][:3]
    [100, 200, 300]
    """
    path = config.REFERENCE_DIR / f"{name}.json"
    if not path.exists():
        return None
    run = json.loads(path.read_text())
    if "updates" not in run["history"]:  # runs saved before histories counted them
        per_epoch = run["images_per_epoch"] // run["batch_size"]
        run["history"]["updates"] = [per_epoch * (i + 1) for i in range(len(run["history"]["loss"]))]
    return run


def compare_on_test(rows, test_ds, data_dir):
    """A Markdown table of test accuracies: your runs beside the reference runs.

    Your run is scored now, on ``test_ds``, with its best-validation
    checkpoint, and only if it was trained on the same prepared data; the
    reference runs' figures were measured on the real photos when they were
    committed.

    Parameters
    ----------
    rows : list of (str, str, str)
        ``(label, run_name, reference_name)`` for each notebook.
    test_ds : tf.data.Dataset
    data_dir : path
        The prepared split ``test_ds`` comes from.

    Returns
    -------
    str

    Example
    -------
    >>> from catdog_lib import train
    >>> print(train.compare_on_test([("03", "no-such-run", "baseline")], None, "data/x"))
    ... # doctest: +ELLIPSIS
    | notebook | your run: ... | reference run: ... |
    |---|---|---|
    | 03 | not run with this profile | 0.7... (a run of 3,000 updates) |
    """
    lines = ["| notebook | your run: test accuracy, best-validation checkpoint | "
             "reference run: test accuracy, best-validation checkpoint |", "|---|---|---|"]
    for label, run_name, reference_name in rows:
        run_dir = config.runs_dir() / run_name
        if not (run_dir / "best.keras").exists():
            yours = "not run with this profile"
        elif read_run_file(run_dir / "run.json")["dataset"] != dataset_id(data_dir):
            yours = "trained on other data than this test set"
        else:
            accuracy = evaluate(load_best(run_name), test_ds, n_wrong=0)["accuracy"]
            yours = f"{accuracy:.3f} (a run of {saved_history(run_name)['updates'][-1]:,} updates)"
        reference = reference_history(reference_name)
        theirs = (f"{reference['test']['best_val_model']['accuracy']:.3f} (a run of "
                  f"{reference['history']['updates'][-1]:,} updates)" if reference
                  else "not committed yet")
        lines.append(f"| {label} | {yours} | {theirs} |")
    return "\n".join(lines)


def in_context(accuracy, history, reference):
    """One sentence that puts a test accuracy in context: how far from chance,
    and where this run stands on the reference run's curve, in weight updates.

    Parameters
    ----------
    accuracy : float
        The test accuracy of this run.
    history : dict
        This run's history, from ``saved_history``.
    reference : dict
        The matching reference run, from ``reference_history``.

    Returns
    -------
    str

    Example
    -------
    >>> from catdog_lib import train
    >>> print(train.in_context(0.5, {"updates": [3]}, train.reference_history("baseline")))
    ... # doctest: +NORMALIZE_WHITESPACE
    Test accuracy 0.500: chance level (0.50), so the model has not yet learned to tell cats
    from dogs. This run made 3 weight updates; the reference run (the book's recipe on the
    real photos) had made 100 by the end of its first epoch, where its validation accuracy
    was 0.525, and peaked at 0.742 after 2,500 (its best checkpoint scored 0.728 on the test
    set).
    """
    updates = history["updates"][-1]
    ref = reference["history"]
    gap = accuracy - 0.5
    if abs(gap) < 0.05:
        verdict = "chance level (0.50), so the model has not yet learned to tell cats from dogs"
    else:
        verdict = f"{abs(gap) * 100:.0f} points {'above' if gap > 0 else 'below'} chance (0.50)"
    passed = [i for i, u in enumerate(ref["updates"]) if u <= updates]
    ref_run = "the reference run (the book's recipe on the real photos)"
    if passed:
        where = (f"after as many, {ref_run} stood at {ref['val_accuracy'][passed[-1]]:.3f} "
                 f"validation accuracy")
    else:
        where = (f"{ref_run} had made {ref['updates'][0]:,} by the end of its first epoch, "
                 f"where its validation accuracy was {ref['val_accuracy'][0]:.3f}")
    peak = ref["val_accuracy"].index(max(ref["val_accuracy"]))
    return (f"Test accuracy {accuracy:.3f}: {verdict}. This run made {updates:,} weight "
            f"updates; {where}, and peaked at {ref['val_accuracy'][peak]:.3f} after "
            f"{ref['updates'][peak]:,} (its best checkpoint scored "
            f"{reference['test']['best_val_model']['accuracy']:.3f} on the test set).")


def p_dog(model, image):
    """The model's probability that one image shows a dog.

    Parameters
    ----------
    model : keras.Model
        A cats-vs-dogs model whose one output is P(dog), as ``models.baseline_convnet``.
    image : array, (150, 150, 3)
        uint8 pixels, e.g. from ``data.photo_from_bytes`` or ``data.photo_from_array``.

    Returns
    -------
    float
        Between 0 (surely a cat) and 1 (surely a dog).

    Example
    -------
    >>> import skimage.data
    >>> from catdog_lib import data, models, train
    >>> photo = data.photo_from_array(skimage.data.chelsea())
    >>> 0 <= train.p_dog(models.baseline_convnet(), photo) <= 1
    True
    """
    return float(model.predict_on_batch(np.asarray(image)[None])[0, 0])
