"""The book's data augmentation, as Keras 3 preprocessing layers.

The book wrote::

    ImageDataGenerator(rotation_range=40, width_shift_range=0.2,
                       height_shift_range=0.2, shear_range=0.2, zoom_range=0.2,
                       horizontal_flip=True, fill_mode='nearest')

``ImageDataGenerator`` is gone from Keras 3. Each argument becomes one random
layer, and the layers run on the training pipeline only: validation and test
images are never augmented.
"""
import keras
import tensorflow as tf
from keras import layers

from . import config

# (book argument, Keras 3 layer, what it does)
MAPPING = [
    ("rotation_range=40", "RandomRotation(40 / 360)",
     "rotate by up to ±40°; Keras counts in fractions of a full turn, so 40° is 40/360"),
    ("width_shift_range=0.2", "RandomTranslation(width_factor=0.2)",
     "shift sideways by up to 20% of the width"),
    ("height_shift_range=0.2", "RandomTranslation(height_factor=0.2)",
     "shift up or down by up to 20% of the height"),
    ("shear_range=0.2", "RandomShear(x_factor=0.2)",
     "slant along x by up to 0.2 (about ±11°); the book's Keras 2.0 read 0.2 as radians "
     "on one axis (later versions read degrees)"),
    ("zoom_range=0.2", "RandomZoom((-0.2, 0.2), (-0.2, 0.2))",
     "zoom each axis independently between 80% and 120%, as ImageDataGenerator did"),
    ("horizontal_flip=True", "RandomFlip('horizontal')",
     "mirror left-right half the time (a cat facing left is still a cat)"),
    ("fill_mode='nearest'", "fill_mode='nearest' on each layer",
     "fill pixels uncovered by a transform with the nearest edge pixel"),
]


def book_augmentation(rotation=40, shift=0.2, shear=0.2, zoom=0.2, flip=True, seed=None):
    """The book's random transforms as one Keras block.

    Parameters
    ----------
    rotation : float
        Largest rotation in degrees.
    shift : float
        Largest shift, as a fraction of width and height.
    shear : float
        Largest shear factor along x.
    zoom : float
        Largest zoom change per axis.
    flip : bool
        Mirror left-right at random.
    seed : int, optional
        Defaults to ``config.SEED``.

    Returns
    -------
    keras.Sequential
        Call it with ``training=True`` to augment; it takes and returns
        images with pixel values 0-255.

    Example
    -------
    >>> import numpy as np
    >>> from catdog_lib import augment
    >>> images = np.zeros((2, 150, 150, 3), "float32")
    >>> tuple(augment.book_augmentation()(images, training=True).shape)
    (2, 150, 150, 3)
    """
    seed = config.SEED if seed is None else seed
    fill = {"fill_mode": "nearest"}
    block = [layers.RandomRotation(rotation / 360, seed=seed, **fill),
             layers.RandomTranslation(shift, shift, seed=seed + 1, **fill),
             layers.RandomShear(x_factor=shear, seed=seed + 2, **fill),
             layers.RandomZoom((-zoom, zoom), (-zoom, zoom), seed=seed + 3, **fill)]
    if flip:
        block.append(layers.RandomFlip("horizontal", seed=seed + 4))
    return keras.Sequential(block, name="book_augmentation")


def augment(train_ds, augmentation=None, batch_size=config.BATCH_SIZE):
    """Apply random augmentation to a training pipeline.

    The transforms run in the ``tf.data`` map, one image at a time, rather
    than inside the model or on whole batches. Measured on 2 CPU cores
    (``benchmarks/augment_placement.py`` and the pipeline rows of
    ``benchmarks/speed.py``): in the map and in the model train at the same
    speed, since the convnet's training step dominates; in the map, one
    image at a time kept pace with whole batches (313 against 308 images/s)
    with a lower peak (823 against 934 MB for the process). In the map,
    augmentation also visibly touches the training pipeline only, and the
    saved model is the plain book network.

    Parameters
    ----------
    train_ds : tf.data.Dataset
        Batches of ``(images, labels)``, from ``data.load_datasets``.
    augmentation : keras.Layer, optional
        Default: ``book_augmentation()``.
    batch_size : int
        The batch size ``train_ds`` was made with; the images are
        re-batched to it after being augmented one by one.

    Returns
    -------
    tf.data.Dataset
        The same batches, transformed anew every epoch.
    """
    augmentation = augmentation or book_augmentation()
    return (train_ds.unbatch()
            .map(lambda x, y: (augmentation(x, training=True), y),
                 num_parallel_calls=tf.data.AUTOTUNE)
            .batch(batch_size)
            .prefetch(tf.data.AUTOTUNE))


def mapping_markdown():
    """The book-to-Keras mapping as a Markdown table, for the notebook."""
    rows = ["| the book's argument | Keras 3 layer | what it does |", "|---|---|---|"]
    rows += [f"| `{book}` | `{layer}` | {meaning} |" for book, layer, meaning in MAPPING]
    return "\n".join(rows)
