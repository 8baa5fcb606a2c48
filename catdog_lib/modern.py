"""Notebook 06's modern convnet, and the ablation from the book's network to it.

Each row of ``ABLATION`` changes one thing from the row above:

=========================  ==================================================
``book``                   notebook 04's network and recipe (RMSprop 1e-4)
``batch_norm``             BatchNormalization between each conv and its ReLU
``global_pooling``         GlobalAveragePooling2D instead of Flatten and the
                           Dense(512) layer: 3.2 million fewer weights
``residual``               blocks 2-4 become two 3x3 convs each, with a 1x1
                           strided shortcut added to their output
``separable``              those convs become SeparableConv2D
``wider``                  twice the channels in blocks 2-4, paid for by the
                           separable convs' lower cost
``adamw_cosine``           AdamW with a warm-up and cosine decay
``stronger_augmentation``  random brightness and contrast on top of the
                           book's transforms (``augment.stronger_augmentation``)
``deeper``                 a fourth residual block, of 512 channels, whose
                           units see the whole photo
=========================  ==================================================

``RECIPE`` is notebook 06's recipe. It changes only the data, so its
network and optimizer are those of ``adamw_cosine``. ``deeper`` is the row
measured after it, to close the gap to 90%: it replaces the recipe only if
its best validation accuracy, averaged over the same seeds at the same
epochs, is higher (the README states the rule).
Precision is per model, as in ``models``.
"""
import keras
import tensorflow as tf
from keras import layers

from . import config, models

ABLATION = ("book", "batch_norm", "global_pooling", "residual", "separable", "wider",
            "adamw_cosine", "stronger_augmentation", "deeper")
RECIPE = "stronger_augmentation"
# AdamW's peak learning rate, warm-up and weight decay: those of the plain
# Keras probe in ../shared/REFERENCE.md (3 warm-up epochs of 60), which
# reached 0.878 validation.
PEAK_LEARNING_RATE = 2e-3
WARMUP_FRACTION = 0.05
WEIGHT_DECAY = 1e-4


def _has(row, ingredient):
    """Whether ablation row ``row`` includes ``ingredient`` (every row from it on does)."""
    if row not in ABLATION:
        raise ValueError(f"row={row!r} is not one of {ABLATION}")
    return ABLATION.index(row) >= ABLATION.index(ingredient)


def _conv(x, filters, row, separable=False, padding="valid"):
    """A conv and its ReLU, with batch norm between them from the ``batch_norm`` row on."""
    norm = _has(row, "batch_norm")
    conv = layers.SeparableConv2D if separable else layers.Conv2D
    # Batch norm's own shift makes the conv's bias redundant.
    x = conv(filters, 3, padding=padding, use_bias=not norm)(x)
    if norm:
        # Keras's default momentum (0.99) leaves its running averages at about
        # half their starting values after 80 updates, so a short run would be
        # validated on statistics that are mostly not the data's.
        x = layers.BatchNormalization(momentum=0.9)(x)
    return layers.Activation("relu")(x)


def _block(x, filters, row):
    """One of the book's conv + max-pooling stages, or from ``residual`` on, a residual block."""
    if not _has(row, "residual"):
        return layers.MaxPooling2D(2)(_conv(x, filters, row))
    shortcut = layers.Conv2D(filters, 1, strides=2, padding="same", use_bias=False)(x)
    for _ in range(2):
        x = _conv(x, filters, row, separable=_has(row, "separable"), padding="same")
    x = layers.MaxPooling2D(2, padding="same")(x)
    return layers.add([x, shortcut])


def ablation_convnet(row, decay_steps=None, micro_batches=1, precision=None):
    """The network of one ablation row, compiled with that row's optimizer.

    Parameters
    ----------
    row : str
        One of ``ABLATION``.
    decay_steps : int, optional
        The weight updates of the whole run, over which the learning rate
        decays to zero from the ``adamw_cosine`` row on; required there.
    micro_batches : int
        Update the weights once every ``micro_batches`` batches, as
        ``models.dropout_convnet`` does. Batch norm then normalizes over
        each micro-batch: notebook 06 feeds 2 of 16 per update, which
        halves the memory of a training step.
    precision : str, optional
        As for ``models.baseline_convnet``.

    Returns
    -------
    keras.Model
        Compiled with binary cross-entropy and accuracy.

    Example
    -------
    >>> from catdog_lib import modern
    >>> modern.ablation_convnet("book").count_params()
    3453121
    >>> modern.ablation_convnet("global_pooling").count_params()
    242017
    """
    widths = (32, 128, 256, 256) if _has(row, "wider") else (32, 64, 128, 128)
    if _has(row, "deeper"):
        # After the third residual block a unit sees at most 74 of the photo's 150 pixels
        # across; after a fourth, all of them.
        widths += (512,)
    if _has(row, "adamw_cosine") and not decay_steps:
        raise ValueError(f"row={row!r} decays its learning rate over the run: give decay_steps")
    with models.policy_scope(models.compute_policy(precision)):
        inputs = keras.Input(shape=(*config.IMAGE_SIZE, 3))
        x = layers.Rescaling(1 / 255)(inputs)
        # The first stage stays one plain conv: on 3 colour channels it is
        # already cheap, and a depthwise step would see one colour at a time.
        x = layers.MaxPooling2D(2)(_conv(x, widths[0], row))
        for filters in widths[1:]:
            x = _block(x, filters, row)
        if _has(row, "global_pooling"):
            x = layers.GlobalAveragePooling2D()(x)
            x = layers.Dropout(0.5)(x)
        else:
            x = layers.Dropout(0.5)(layers.Flatten()(x))
            x = layers.Dense(512, activation="relu")(x)
        outputs = layers.Dense(1, activation="sigmoid", dtype="float32")(x)
        name = "modern_convnet" if row == RECIPE else f"ablation_{row}"
        model = keras.Model(inputs, outputs, name=name)
    model.compile(optimizer=_optimizer(row, decay_steps, micro_batches),
                  loss="binary_crossentropy", metrics=["accuracy"])
    return model


def _optimizer(row, decay_steps, micro_batches):
    accumulate = micro_batches if micro_batches > 1 else None  # as in models
    if not _has(row, "adamw_cosine"):
        return keras.optimizers.RMSprop(learning_rate=1e-4, gradient_accumulation_steps=accumulate)
    # Keras evaluates a schedule at every batch, accumulated or not.
    steps = decay_steps * micro_batches
    warmup = int(WARMUP_FRACTION * steps)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, steps - warmup, warmup_target=PEAK_LEARNING_RATE, warmup_steps=warmup)
    return keras.optimizers.AdamW(learning_rate=schedule, weight_decay=WEIGHT_DECAY,
                                  gradient_accumulation_steps=accumulate)


def gradient_norms(model, images, labels):
    """How large each Conv2D kernel's gradient is for one batch, first layer first.

    Parameters
    ----------
    model : keras.Model
        A model with a sigmoid output.
    images, labels : arrays
        One batch.

    Returns
    -------
    list of float
        The Euclidean norm of each kernel's gradient of the batch's mean
        binary cross-entropy.

    Example
    -------
    >>> import numpy as np
    >>> from catdog_lib import modern
    >>> model = modern.ablation_convnet("book", precision="float32")
    >>> images, labels = np.zeros((2, 150, 150, 3), "uint8"), np.array([[0.0], [1.0]])
    >>> len(modern.gradient_norms(model, images, labels))
    4
    """
    kernels = [layer.kernel for layer in model.layers if isinstance(layer, layers.Conv2D)]
    with tf.GradientTape() as tape:
        loss = keras.ops.mean(keras.losses.binary_crossentropy(labels, model(images, training=True)))
    return [float(tf.norm(g)) for g in tape.gradient(loss, kernels)]
