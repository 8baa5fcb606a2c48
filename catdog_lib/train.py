"""Train, keep a record, resume after an interruption, and evaluate.

``fit`` saves everything about a run under ``runs/<run_name>/`` (the folder
``CATDOG_RUNS_DIR`` names), with Keras' own callbacks where Keras has one:

- ``run.json``: what the run is (model, precision, data, seed, profile) and
  what ran it (device, library versions), written once when it starts;
- ``history.json``: loss, accuracy and seconds per epoch, rewritten after every epoch;
- ``log.csv``: the same, from ``CSVLogger``;
- ``best.keras``: the model with the best validation accuracy so far (``ModelCheckpoint``);
- ``backup/``: weights and optimizer after the last finished epoch (``BackupAndRestore``).

Calling ``fit`` again with the same ``run_name`` resumes after the last
finished epoch, but only when it is the same run: a different model,
precision, dataset, seed or profile stops with a message saying what differs.
"""
import hashlib
import json
import platform
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from . import config


class RunMismatch(Exception):
    """A run folder holds a different run from the one asked for."""


def device_name():
    """``"GPU (name)"`` when TensorFlow sees a GPU, else ``"CPU"``."""
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU"
    return f"GPU ({tf.config.experimental.get_device_details(gpus[0]).get('device_name', gpus[0].name)})"


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
        ``dataset`` (``dataset_id``), ``seed`` and ``profile``.
    """
    # Layer kinds, output shapes and sizes: what the saved weights must fit.
    layers = [[type(layer).__name__, list(layer.output.shape[1:]), layer.count_params()]
              for layer in model.layers]
    return {"model": model.name,
            "architecture": hashlib.sha256(json.dumps(layers).encode()).hexdigest()[:16],
            "input_shape": list(model.input_shape[1:]), "precision": model.dtype_policy.name,
            "dataset": dataset_id(data_dir), "seed": config.seed() if seed is None else seed,
            "profile": config.profile()["name"]}


def run_info(model, epochs, data_dir=None, seed=None):
    """``run_identity`` plus what ran it, so a saved result can be explained later."""
    return {**run_identity(model, data_dir, seed), "epochs": epochs, "device": device_name(),
            "python": sys.version.split()[0], "platform": platform.platform(),
            "tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__}


def _check_same_run(run_dir, identity):
    """Stop before any weights are loaded when ``run_dir`` holds another run."""
    saved = json.loads((run_dir / "run.json").read_text())
    differs = [f"{key}: saved {saved.get(key)!r}, now {value!r}"
               for key, value in identity.items() if saved.get(key) != value]
    if differs:
        raise RunMismatch(
            f"{config.display_path(run_dir)} holds a different run ({'; '.join(differs)}). "
            f"Delete that folder to start over, or choose another run_name.")


class _SaveHistory(keras.callbacks.Callback):
    """Append each finished epoch (and its wall time, as ``seconds``) to
    history.json, so an interrupted run keeps its curves."""

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
        logs = {**(logs or {}), "seconds": time.perf_counter() - self.started}
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        self.path.write_text(json.dumps(self.history, indent=1))


def fit(model, train_ds, val_ds, epochs, run_name, steps_per_epoch=None, validation_steps=None,
        data_dir=None, seed=None):
    """Train ``model`` and record the run; resume if it was interrupted.

    Parameters
    ----------
    model : keras.Model
        A compiled model, e.g. ``models.baseline_convnet()``.
    train_ds, val_ds : tf.data.Dataset
    epochs : int
        Total epochs; a resumed run trains only the missing ones.
    run_name : str
        The folder under ``CATDOG_RUNS_DIR`` (default ``runs/``).
    steps_per_epoch : int, optional
        Batches per epoch; the training set is repeated to supply them.
    validation_steps : int, optional
        Validation batches per epoch (default: all of them).
    data_dir : path, optional
        The prepared split the datasets come from, recorded in the run's
        identity (default ``data.prepared_dir()``, where ``load_datasets``
        reads by default).
    seed : int, optional
        The seed the datasets were shuffled and augmented with, recorded in
        the run's identity (default ``CATDOG_SEED``).

    Returns
    -------
    dict
        The whole history, ``{"loss": [...], "accuracy": [...], "val_loss": ...}``.

    Raises
    ------
    RunMismatch
        When ``run_name`` holds a run of another model, precision, dataset,
        seed or profile.

    Example
    -------
    >>> from catdog_lib import data, models, train
    >>> history = train.fit(models.baseline_convnet(), *data.load_datasets()[:2],
    ...                     epochs=1, run_name="example")  # doctest: +SKIP
    """
    from . import data

    run_dir = config.writable_dir("CATDOG_RUNS_DIR") / run_name
    data_dir = data.prepared_dir() if data_dir is None else data_dir
    identity = run_identity(model, data_dir, seed)
    history_path, backup = run_dir / "history.json", run_dir / "backup"
    if (run_dir / "run.json").exists():
        _check_same_run(run_dir, identity)
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "run.json").write_text(json.dumps(run_info(model, epochs, data_dir, seed), indent=1))
    history = json.loads(history_path.read_text()) if backup.exists() and history_path.exists() \
        else {}
    done = len(history.get("loss", []))
    if done:
        print(f"Resuming {run_name} after epoch {done} of {epochs} "
              f"(delete {config.display_path(run_dir)} to start over).")
    print(f"Training on {device_name()} with precision {identity['precision']}, "
          f"profile {identity['profile']}, {epochs} epochs.")
    if steps_per_epoch:
        train_ds = train_ds.repeat()
    best = keras.callbacks.ModelCheckpoint(run_dir / "best.keras", monitor="val_accuracy",
                                           save_best_only=True)
    if done:  # so a worse first epoch after resuming does not replace the best model
        best.best = max(history["val_accuracy"])
    callbacks = [keras.callbacks.CSVLogger(str(run_dir / "log.csv"), append=done > 0), best,
                 _SaveHistory(history_path, history),
                 keras.callbacks.BackupAndRestore(str(backup), delete_checkpoint=False)]
    model.fit(train_ds, validation_data=val_ds, epochs=epochs,
              steps_per_epoch=steps_per_epoch, validation_steps=validation_steps,
              callbacks=callbacks, shuffle=False,  # load_datasets already shuffles
              verbose=2 if config.unattended() else 1)
    return history


def evaluate(model, test_ds, n_wrong=8):
    """Test-set loss and accuracy, the confusion matrix, and the worst mistakes.

    Parameters
    ----------
    model : keras.Model
    test_ds : tf.data.Dataset
        Unshuffled batches of ``(images, labels)``.
    n_wrong : int
        How many of the most confidently wrong images to return.

    Returns
    -------
    dict
        ``loss``, ``accuracy``, ``confusion`` (2x2 array: rows are the true
        class cat, dog; columns the predicted class), and ``wrong``: a list
        of ``(image, true_label, p_dog)`` sorted from most confident down.

    Example
    -------
    >>> from catdog_lib import train
    >>> result = train.evaluate(model, test_ds)  # doctest: +SKIP
    """
    # Only the n_wrong worst images are kept, so evaluating never holds a
    # second copy of the test set in memory.
    labels, probs = [], []
    worst = []  # (wrongness, image, true label, p_dog), at most n_wrong
    for x, y in test_ds:
        truth = y.numpy().ravel()
        p_dog = np.asarray(model.predict_on_batch(x), dtype="float64").ravel()
        labels.append(truth)
        probs.append(p_dog)
        wrong = np.flatnonzero((p_dog > 0.5) != (truth > 0.5))
        worst += [(abs(p_dog[i] - truth[i]), x[i].numpy(), int(truth[i]), float(p_dog[i]))
                  for i in wrong]
        worst = sorted(worst, key=lambda w: -w[0])[:n_wrong]
    labels, probs = np.concatenate(labels), np.concatenate(probs)
    eps = 1e-7
    clipped = np.clip(probs, eps, 1 - eps)
    loss = float(-np.mean(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped)))
    predicted = (probs > 0.5).astype(int)
    truth = labels.astype(int)
    confusion = np.zeros((2, 2), dtype=int)
    np.add.at(confusion, (truth, predicted), 1)
    return {"loss": loss, "accuracy": float(np.mean(predicted == truth)), "confusion": confusion,
            "wrong": [w[1:] for w in worst]}


def saved_history(run_name):
    """The history a finished or interrupted run saved, or None."""
    path = config.runs_dir() / run_name / "history.json"
    return json.loads(path.read_text()) if path.exists() else None


def reference_history(name):
    """A committed reference run (``"baseline"`` or ``"augmented"``) on the real photos.

    Returns
    -------
    dict or None
        ``{"history": {...}, "test": {...}, "info": {...}}``, or None when
        no reference run of that name has been committed.
    """
    path = config.REFERENCE_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None
