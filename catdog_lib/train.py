"""Train, keep a record, resume after an interruption, and evaluate.

``fit`` saves everything about a run under ``runs/<run_name>/``:

- ``history.json``: loss, accuracy and seconds per epoch, rewritten after every epoch;
- ``log.csv``: the same, from Keras' ``CSVLogger``;
- ``best.keras``: the model with the best validation accuracy so far;
- ``last.keras``: the model and optimizer after the last finished epoch;
- ``run.json``: profile, seed, precision, device and library versions.

Calling ``fit`` again with the same ``run_name`` resumes from ``last.keras``.
"""
import json
import platform
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from . import config


def device_name():
    """``"GPU (name)"`` when TensorFlow sees a GPU, else ``"CPU"``."""
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU"
    return f"GPU ({tf.config.experimental.get_device_details(gpus[0]).get('device_name', gpus[0].name)})"


def run_info(epochs):
    """What a run used, so a saved result can be explained later."""
    return {"profile": config.PROFILE, "seed": config.SEED, "epochs": epochs,
            "precision": keras.mixed_precision.global_policy().name, "device": device_name(),
            "python": sys.version.split()[0], "platform": platform.platform(),
            "tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__}


class _SaveHistory(keras.callbacks.Callback):
    """Append each finished epoch (and its wall time, as ``seconds``) to
    history.json and save last.keras, so an interrupted run loses at most the
    epoch in progress."""

    def __init__(self, run_dir, history):
        super().__init__()
        self.run_dir, self.history = run_dir, history

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = {**(logs or {}), "seconds": time.perf_counter() - self.started}
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        self.model.save(self.run_dir / "last.keras")
        (self.run_dir / "history.json").write_text(json.dumps(self.history, indent=1))


def _restore(model, path):
    """Copy weights and optimizer state from a saved model into ``model``."""
    saved = keras.models.load_model(path)
    model.set_weights(saved.get_weights())
    model.optimizer.build(model.trainable_variables)
    for mine, theirs in zip(model.optimizer.variables, saved.optimizer.variables):
        mine.assign(theirs)


def fit(model, train_ds, val_ds, epochs, run_name, steps_per_epoch=None, validation_steps=None):
    """Train ``model`` and record the run; resume if it was interrupted.

    Parameters
    ----------
    model : keras.Model
        A compiled model, e.g. ``models.baseline_convnet()``.
    train_ds, val_ds : tf.data.Dataset
    epochs : int
        Total epochs; a resumed run trains only the missing ones.
    run_name : str
        The folder under ``runs/``.
    steps_per_epoch : int, optional
        Batches per epoch; the training set is repeated to supply them.
    validation_steps : int, optional
        Validation batches per epoch (default: all of them).

    Returns
    -------
    dict
        The whole history, ``{"loss": [...], "accuracy": [...], "val_loss": ...}``.

    Example
    -------
    >>> from catdog_lib import data, models, train
    >>> history = train.fit(models.baseline_convnet(), *data.load_datasets()[:2],
    ...                     epochs=1, run_name="example")  # doctest: +SKIP
    """
    run_dir = config.RUNS_DIR / run_name
    run_dir.mkdir(parents=True, exist_ok=True)
    history_path = run_dir / "history.json"
    history = json.loads(history_path.read_text()) if history_path.exists() else {}
    done = len(history.get("loss", []))
    if done and (run_dir / "last.keras").exists():
        _restore(model, run_dir / "last.keras")
        print(f"Resuming {run_name} after epoch {done} of {epochs} "
              f"(delete {config.display_path(run_dir)} to start over).")
    else:
        history, done = {}, 0
    info = run_info(epochs)
    (run_dir / "run.json").write_text(json.dumps(info, indent=1))
    print(f"Training on {info['device']} with precision {info['precision']}, "
          f"profile {config.PROFILE}, {epochs} epochs.")
    if done >= epochs:
        return history
    if steps_per_epoch:
        train_ds = train_ds.repeat()
    best = keras.callbacks.ModelCheckpoint(run_dir / "best.keras", monitor="val_accuracy",
                                           save_best_only=True)
    if done:  # so a worse first epoch after resuming does not replace the best model
        best.best = max(history["val_accuracy"])
    callbacks = [keras.callbacks.CSVLogger(str(run_dir / "log.csv"), append=done > 0), best,
                 _SaveHistory(run_dir, history)]
    model.fit(train_ds, validation_data=val_ds, epochs=epochs, initial_epoch=done,
              steps_per_epoch=steps_per_epoch, validation_steps=validation_steps,
              callbacks=callbacks, shuffle=False,  # load_datasets already shuffles
              verbose=2 if config.UNATTENDED else 1)
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
    path = config.RUNS_DIR / run_name / "history.json"
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
