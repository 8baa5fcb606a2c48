"""The book's data augmentation, as one Keras 3 layer.

The book wrote::

    ImageDataGenerator(rotation_range=40, width_shift_range=0.2,
                       height_shift_range=0.2, shear_range=0.2, zoom_range=0.2,
                       horizontal_flip=True, fill_mode='nearest')

``ImageDataGenerator`` is gone from Keras 3. Its random layers
(``RandomRotation``, ``RandomTranslation``, ``RandomShear``, ``RandomZoom``)
draw the same transforms, but each resamples the image: four layers
interpolate it four times, blurring it a little and costing a pass over it
each time. ``BookAugmentation`` draws the same random parameters, composes
them into one affine transform about the image centre, as
``ImageDataGenerator`` did, and resamples once. It runs on the training
pipeline only: validation and test images are never augmented.
"""
import math

import keras
import tensorflow as tf
from keras import layers, ops

from . import config

# (book argument, the Keras 3 layer that draws the same, what it does)
MAPPING = [
    ("rotation_range=40", "RandomRotation(40 / 360)",
     "rotate by up to ±40°; Keras counts in fractions of a full turn, so 40° is 40/360"),
    ("width_shift_range=0.2, height_shift_range=0.2",
     "RandomTranslation(height_factor=0.2, width_factor=0.2)",
     "shift sideways and up or down, each by up to 20% of the width or height, drawn apart"),
    ("shear_range=0.2", "RandomShear(x_factor=0.2)",
     "slant along x by up to 0.2 (about ±11°); the book's Keras 2.0 read 0.2 as radians "
     "on one axis (later versions read degrees). Like the book, catdog slants about the "
     "image centre; Keras's layer slants about the top-left corner, which also shifts the image"),
    ("zoom_range=0.2", "RandomZoom((-0.2, 0.2), (-0.2, 0.2))",
     "zoom each axis independently between 80% and 120%, as ImageDataGenerator did"),
    ("horizontal_flip=True", "RandomFlip('horizontal')",
     "mirror left-right half the time (a cat facing left is still a cat)"),
    ("fill_mode='nearest'", "fill_mode='nearest'",
     "fill pixels uncovered by the transform with the nearest edge pixel"),
]


class BookAugmentation(layers.Layer):
    """The book's random transforms, composed into one affine transform per image.

    For each image it draws a rotation angle, two shifts, a shear, a zoom
    per axis and a coin for the mirror, each uniformly within the given
    bound, multiplies their matrices into one, and resamples the image once
    (bilinear, edges filled with the nearest pixel).

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
        Defaults to ``config.seed()``.

    Example
    -------
    >>> from catdog_lib import augment
    >>> draws = augment.BookAugmentation(seed=1).draw(1000)
    >>> round(float(draws["angle"].numpy().max()))
    40
    """

    def __init__(self, rotation=40, shift=0.2, shear=0.2, zoom=0.2, flip=True, seed=None,
                 **kwargs):
        # Pixels and matrices stay float32 under any global policy: bfloat16
        # keeps 8 significant bits, so a coordinate near 150 would snap to
        # whole pixels.
        super().__init__(dtype="float32", **kwargs)
        self.rotation, self.shift, self.shear, self.zoom = rotation, shift, shear, zoom
        self.flip = flip
        self.seed = config.seed() if seed is None else seed
        self.generator = keras.random.SeedGenerator(self.seed)

    def draw(self, n):
        """``n`` random draws of the parameters, one per image, as a dict of tensors."""
        def uniform(bound):
            return keras.random.uniform((n,), -bound, bound, seed=self.generator)

        return {"angle": uniform(self.rotation),  # degrees
                "shift_x": uniform(self.shift), "shift_y": uniform(self.shift),
                "shear": uniform(self.shear),
                "zoom_x": 1 + uniform(self.zoom), "zoom_y": 1 + uniform(self.zoom),
                "flip": ops.where(uniform(1.0) < 0, -1.0, 1.0) if self.flip else ops.ones((n,))}

    def transform(self, images, p):
        """Resample a batch of ``images`` once, image ``i`` under the parameters ``p[...][i]``."""
        height, width = (ops.cast(size, "float32") for size in ops.shape(images)[1:3])
        cx, cy = (width - 1) / 2, (height - 1) / 2
        angle = p["angle"] * (math.pi / 180)
        cos, sin = ops.cos(angle), ops.sin(angle)
        # Each matrix maps an output pixel to the input point it is read
        # from, so the rightmost acts first on the output: the flip (after
        # all the rest, as in the book), then zoom, shear, shift and
        # rotation, the order of ImageDataGenerator and of the four layers.
        m = (_affine(1, 0, cx, 0, 1, cy, like=angle)
             @ _affine(cos, -sin, 0, sin, cos, 0, like=angle)
             @ _affine(1, 0, -p["shift_x"] * width, 0, 1, -p["shift_y"] * height, like=angle)
             @ _affine(1, p["shear"], 0, 0, 1, 0, like=angle)
             @ _affine(p["zoom_x"] * p["flip"], 0, 0, 0, p["zoom_y"], 0, like=angle)
             @ _affine(1, 0, -cx, 0, 1, -cy, like=angle))
        transform = ops.concatenate([ops.reshape(m[:, :2], (-1, 6)), ops.zeros_like(m[:, 2, :2])],
                                    axis=1)
        return ops.image.affine_transform(images, transform, interpolation="bilinear",
                                          fill_mode="nearest")

    def call(self, images, training=True):
        images = ops.cast(images, "float32")
        if not training:
            return images
        one = len(images.shape) == 3  # in the tf.data map, one image at a time
        batch = images[None] if one else images
        out = self.transform(batch, self.draw(ops.shape(batch)[0]))
        return out[0] if one else out

    def compute_output_shape(self, input_shape):
        return input_shape


def _affine(a, b, c, d, e, f, like):
    """Matrices [[a, b, c], [d, e, f], [0, 0, 1]], one per entry of the vector ``like``."""
    zero = ops.zeros_like(like)
    entries = [zero + x for x in (a, b, c, d, e, f, 0, 0, 1)]
    return ops.reshape(ops.stack(entries, axis=-1), (-1, 3, 3))


def book_augmentation(rotation=40, shift=0.2, shear=0.2, zoom=0.2, flip=True, seed=None):
    """The book's random transforms as one Keras layer.

    Parameters
    ----------
    rotation, shift, shear, zoom, flip, seed
        As for ``BookAugmentation``; the defaults are the book's arguments.

    Returns
    -------
    BookAugmentation
        Call it with ``training=True`` to augment; it takes images with
        pixel values 0-255, one ``(H, W, 3)`` or a batch, and returns them
        as float32.

    Example
    -------
    >>> import numpy as np
    >>> from catdog_lib import augment
    >>> images = np.zeros((2, 150, 150, 3), "float32")
    >>> tuple(augment.book_augmentation()(images, training=True).shape)
    (2, 150, 150, 3)
    """
    return BookAugmentation(rotation, shift, shear, zoom, flip, seed, name="book_augmentation")


def stronger_augmentation(brightness=0.2, contrast=0.2, seed=None):
    """The book's transforms, then random brightness and contrast: notebook 06's augmentation.

    Parameters
    ----------
    brightness : float
        Largest brightness change, as a fraction of the 0-255 range.
    contrast : float
        Largest contrast change: each channel's spread about its mean is
        scaled by a factor between ``1 - contrast`` and ``1 + contrast``.
    seed : int, optional
        Defaults to ``config.seed()``.

    Returns
    -------
    StrongerAugmentation
        Takes and returns images as ``book_augmentation`` does, pixel
        values kept within 0-255.

    Example
    -------
    >>> import numpy as np
    >>> from catdog_lib import augment
    >>> out = augment.stronger_augmentation()(np.full((150, 150, 3), 250, "uint8"), training=True)
    >>> tuple(out.shape), float(out.numpy().max()) <= 255
    ((150, 150, 3), True)
    """
    return StrongerAugmentation(brightness, contrast, seed, name="stronger_augmentation")


class StrongerAugmentation(layers.Layer):
    """``BookAugmentation``, then Keras's ``RandomBrightness`` and ``RandomContrast``.

    A layer rather than a ``Sequential``, so one image and a batch both
    pass (a ``Sequential`` fixes its input rank on first call).
    """

    def __init__(self, brightness=0.2, contrast=0.2, seed=None, **kwargs):
        super().__init__(dtype="float32", **kwargs)
        seed = config.seed() if seed is None else seed
        self.book = book_augmentation(seed=seed)
        self.brightness = layers.RandomBrightness(brightness, seed=seed, dtype="float32")
        self.contrast = layers.RandomContrast(contrast, seed=seed + 1, dtype="float32")

    def call(self, images, training=True):
        images = self.book(images, training=training)
        images = self.brightness(images, training=training)
        return self.contrast(images, training=training)

    def compute_output_shape(self, input_shape):
        return input_shape


def augment(train_ds, augmentation=None, batch_size=config.BATCH_SIZE):
    """Apply random augmentation to a training pipeline.

    The transforms run in the ``tf.data`` map, one image at a time, rather
    than inside the model or on whole batches. Measured on 2 CPU cores, with
    Keras's four random layers before catdog composed them into one
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
    rows = ["| the book's argument | Keras 3 layer with the same draw | what it does |",
            "|---|---|---|"]
    rows += [f"| `{book}` | `{layer}` | {meaning} |" for book, layer, meaning in MAPPING]
    rows += ["", "catdog's `BookAugmentation` draws each parameter as that layer would, composes "
             "them all into one affine transform and resamples each image once, as "
             "`ImageDataGenerator` did; the four Keras layers would interpolate it four times."]
    return "\n".join(rows)
