"""The trained model that ships with the series, for notebook 05 to look inside.

It is the best-validation checkpoint of the book's augmented recipe trained
on the real photos (``benchmarks/reproduce_book.py``), stored by
``benchmarks/ship_model.py`` as float16 weights without optimizer state, with
a model card beside it: ``reference/MODEL_CARD.md``, rendered from
``reference/book_augmented.card.json``, which also holds the weights' sha256.
The weights come with the package; no photos do.
"""
import hashlib
import json
import math

import numpy as np

from . import config, models, train

WEIGHTS = config.REFERENCE_DIR / "book_augmented.weights.npz"
CARD = config.REFERENCE_DIR / "book_augmented.card.json"
CARD_MARKDOWN = config.REFERENCE_DIR / "MODEL_CARD.md"
# Guessing scores about 0.50 on the validation photos, within a few points.
CLEARLY_LEARNED = 0.6


class ShippedModelError(RuntimeError):
    """The shipped weights are missing, damaged, or do not fit the network."""


def sha256(path):
    """The sha256 of a file, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_weights(model, path):
    """Store ``model``'s weights as float16, in order, without optimizer state.

    Parameters
    ----------
    model : keras.Model
    path : path
        The ``.npz`` file to write.

    Returns
    -------
    str
        The file's sha256.
    """
    arrays = {f"w{i:02d}": np.asarray(v.numpy(), "float16") for i, v in enumerate(model.weights)}
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)
    return sha256(path)


def load(weights=None, card=None):
    """The shipped model: the book's dropout network with the trained weights.

    The weights' sha256 is checked against the model card first, so a
    missing, damaged or replaced file stops with a message instead of
    giving a model that predicts at random.

    Parameters
    ----------
    weights, card : path, optional
        The files that ship with the package (``WEIGHTS``, ``CARD``) by default.

    Returns
    -------
    keras.Sequential
        ``models.dropout_convnet`` in float32, ready to predict.

    Raises
    ------
    ShippedModelError

    Example
    -------
    >>> from catdog_lib import trained
    >>> trained.load().count_params()
    3453121
    """
    weights, card = weights or WEIGHTS, card or CARD
    for path in (weights, card):
        if not path.is_file():
            raise ShippedModelError(
                f"{path}: the shipped model's file is missing. It comes with the package: "
                f"reinstall catdog, or in a clone run `git checkout -- {path.name}` in its folder.")
    expected = json.loads(card.read_text())["sha256"]
    actual = sha256(weights)
    if actual != expected:
        raise ShippedModelError(
            f"{weights}: its sha256 is {actual}, but {card.name} says {expected}. The file is "
            f"damaged or was replaced; reinstall catdog or restore it with git.")
    model = models.dropout_convnet(precision="float32")
    with np.load(weights) as stored:
        arrays = [stored[key] for key in sorted(stored.files)]
    shapes = [tuple(v.shape) for v in model.weights]
    if [a.shape for a in arrays] != shapes:
        raise ShippedModelError(f"{weights}: its arrays {[a.shape for a in arrays]} do not fit "
                                f"the book's network, which needs {shapes}.")
    for variable, array in zip(model.weights, arrays):
        variable.assign(array.astype("float32"))
    return model


def card_markdown(card):
    """The model card as Markdown, from the card's facts (a dict)."""
    test = card["test_accuracy"]
    return f"""# Model card: the book's augmented convnet, trained on the real photos

- **What it is.** The network of notebook 04 (the book's section 5.2: four Conv2D/MaxPooling2D
  pairs, Dropout(0.5), Dense(512), Dense(1, sigmoid); {card["parameters"]:,} parameters),
  the checkpoint with the best validation accuracy of one run of the book's recipe.
- **Recipe.** RMSprop(learning_rate=1e-4), binary cross-entropy, batches of 32 augmented photos
  (rotation, shift, shear, zoom, horizontal flip), {card["epochs"]} epochs of 100 batches, seed
  {card["seed"]}, precision {card["precision"]}. Best validation epoch: {card["best_epoch"]}.
- **Data.** {card["data"]}. Training on the 2,000 training photos; the checkpoint was chosen on
  the 1,000 validation photos; the 1,000 test photos were used once, to report.
- **Scores.** Validation accuracy {card["val_accuracy"]:.3f}. Test accuracy {test["recorded"]:.3f}
  as recorded by the run; {test["round_trip"]:.3f} after storing the weights as float16 and
  loading them back (difference {100 * (test["round_trip"] - test["recorded"]):+.1f} points).
- **Made by.** `{card["command"]}`, from the run of `{card["run_command"]}`, on
  {card["machine"]} (TensorFlow {card["tensorflow"]}, Keras {card["keras"]}).
- **File.** `{WEIGHTS.name}`: float16 weights, no optimizer state, {card["bytes"]:,} bytes,
  sha256 `{card["sha256"]}` (checked by `trained.load()`).
- **Terms.** The photos are from Kaggle's "Dogs vs. Cats" competition, whose terms allow
  teaching and research, not redistribution: this package ships the trained weights only, no
  photos. Use the model to learn from, not to decide anything about real animals.
- **Limits.** About {math.floor(100 * test["recorded"])}% right on photos like the training
  ones; it has never seen anything but cats and dogs, and answers "cat" or "dog" for anything.
"""


def own_or_shipped(run_name):
    """A student's own best model of ``run_name`` when its best validation
    accuracy reaches ``CLEARLY_LEARNED``, else the shipped model; and a
    sentence that says which.

    Parameters
    ----------
    run_name : str
        A run of ``train.run_callbacks``, e.g. ``"04_augmented-quick"``.

    Returns
    -------
    model : keras.Model
    which : str
    """
    run_json = config.runs_dir() / run_name / "run.json"
    damaged = None
    try:
        history = train.saved_history(run_name)
        # A smoke run validates on 2 batches: its accuracy says nothing.
        smoke = run_json.is_file() and train.read_run_file(run_json).get("profile") == "smoke"
    except train.DamagedRun as err:
        history, smoke, damaged = None, False, err
    best = max(history["val_accuracy"]) if history else None
    if best is not None and best >= CLEARLY_LEARNED and not smoke:
        return train.load_best(run_name), (
            f"Your own model from notebook 04 (run {run_name}): its best validation "
            f"accuracy was {best:.3f}.")
    if damaged:
        why = str(damaged)
    elif best is None:
        why = "you have no run of notebook 04 with this profile"
    elif smoke:
        why = f"your run {run_name} is a smoke run: a check that the cells work, not training"
    else:
        why = (f"your run {run_name} reached a best validation accuracy of {best:.3f}, "
               f"too close to guessing (0.50) to show much")
    model, facts = load(), json.loads(CARD.read_text())
    return model, (f"The model that ships with the series (the book's recipe, {facts['epochs']} "
                   f"epochs on the real photos: validation accuracy {facts['val_accuracy']:.3f}, "
                   f"test {facts['test_accuracy']['round_trip']:.3f}), because {why}.")
