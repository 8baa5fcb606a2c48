"""The book's convnet (section 5.2), in Keras 3.

Two changes from the book's code, neither of which changes what is learned:
the model rescales pixels itself (a ``Rescaling(1/255)`` layer with no
weights), so it takes the raw uint8 images from ``data.load_datasets``; and
the optimizer is written ``RMSprop(learning_rate=1e-4)``, since Keras 3
removed ``lr=``.

Precision belongs to the model: each network is built with its own dtype
policy (``precision=``, by default ``CATDOG_PRECISION``), and building one
leaves Keras's global policy as it was.
"""
import contextlib
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from . import config


def choose_policy(cpu_flags, gpu_capability=None):
    """The mixed-precision policy for a machine, from what it can compute natively.

    Parameters
    ----------
    cpu_flags : str
        The ``flags`` line of ``/proc/cpuinfo``.
    gpu_capability : (int, int), optional
        The GPU's CUDA compute capability, if there is a GPU.

    Returns
    -------
    str
        ``mixed_bfloat16`` on a GPU of capability 8.0+ or a CPU with AMX or
        AVX512_BF16; ``mixed_float16`` on older GPUs (Colab's T4);
        ``float32`` otherwise, where 16-bit maths would only be emulated.

    Example
    -------
    >>> from catdog_lib import models
    >>> models.choose_policy("fpu sse2 avx2 fma"), models.choose_policy("avx2", (7, 5))
    ('float32', 'mixed_float16')
    """
    if gpu_capability is not None:
        return "mixed_bfloat16" if tuple(gpu_capability) >= (8, 0) else "mixed_float16"
    if {"amx_bf16", "avx512_bf16"} & set(cpu_flags.split()):
        return "mixed_bfloat16"
    return "float32"


def compute_policy(precision=None):
    """The dtype policy a precision setting means on this machine.

    Parameters
    ----------
    precision : {"auto", "float32", "mixed_bfloat16", "mixed_float16"}, optional
        Defaults to ``CATDOG_PRECISION``; ``auto`` asks ``choose_policy``.

    Returns
    -------
    str

    Example
    -------
    >>> from catdog_lib import models
    >>> models.compute_policy("mixed_float16")
    'mixed_float16'
    """
    precision = precision or config.precision()
    if precision not in config.PRECISIONS:
        raise ValueError(f"precision={precision!r} is not one of {config.PRECISIONS}")
    if precision != "auto":
        return precision
    gpus = tf.config.list_physical_devices("GPU")
    capability = tf.config.experimental.get_device_details(gpus[0]).get(
        "compute_capability") if gpus else None
    cpuinfo = Path("/proc/cpuinfo")
    flags = next((line for line in cpuinfo.read_text().splitlines() if line.startswith("flags")),
                 "") if cpuinfo.exists() else ""
    return choose_policy(flags, capability)


def seed_everything(seed=None):
    """Make what follows in this process repeat exactly, on the same machine.

    Seeds Python, NumPy and TensorFlow, and turns on TensorFlow's op
    determinism for the rest of the process (it cannot be turned off), so
    two runs with the same seed give identical losses. Notebooks 03, 04 and
    06 call it right before they build their network, when
    ``CATDOG_DETERMINISTIC=1``; building a model never does.

    Parameters
    ----------
    seed : int, optional
        Defaults to ``CATDOG_SEED``.

    Example
    -------
    >>> from catdog_lib import models
    >>> models.seed_everything(1)  # doctest: +SKIP
    """
    keras.utils.set_random_seed(config.seed() if seed is None else seed)
    tf.config.experimental.enable_op_determinism()


@contextlib.contextmanager
def policy_scope(policy):
    """Build layers and models under ``policy`` inside the ``with`` block only.

    A Keras layer takes the global dtype policy when it is created and keeps
    it, so models built inside the block compute in ``policy`` while the
    global policy is restored when the block ends, whatever happens in it.

    Example
    -------
    >>> import keras
    >>> from catdog_lib import models
    >>> with models.policy_scope("mixed_bfloat16"):
    ...     layer = keras.layers.Dense(1)
    >>> layer.dtype_policy.name, keras.mixed_precision.global_policy().name
    ('mixed_bfloat16', 'float32')
    """
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _book_convnet(name, dropout, micro_batches=1, precision=None):
    with policy_scope(compute_policy(precision)):
        return _build_and_compile(name, dropout, micro_batches)


def _build_and_compile(name, dropout, micro_batches):
    # One list, not model.add() layer by layer: add() rebuilds the graph each
    # time, leaving each layer with several outputs, and a model made of
    # layer outputs (as notebook 05 makes) would mix graphs.
    stack = [keras.Input(shape=(*config.IMAGE_SIZE, 3)), layers.Rescaling(1 / 255, name="rescaling")]
    for i, filters in enumerate((32, 64, 128, 128), start=1):
        stack += [layers.Conv2D(filters, 3, activation="relu", name=f"conv2d_{i}"),
                  layers.MaxPooling2D(2, name=f"max_pooling2d_{i}")]
    stack.append(layers.Flatten(name="flatten"))
    if dropout:
        stack.append(layers.Dropout(dropout, name="dropout"))
    stack += [layers.Dense(512, activation="relu", name="dense_1"),
              # The output stays float32 under mixed precision, so the loss is exact.
              layers.Dense(1, activation="sigmoid", dtype="float32", name="dense_2")]
    model = keras.Sequential(stack, name=name)
    # Keras counts accumulation steps from 2; None updates on every batch.
    accumulate = micro_batches if micro_batches > 1 else None
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=1e-4,
                                                     gradient_accumulation_steps=accumulate),
                  loss="binary_crossentropy", metrics=["accuracy"])
    return model


def baseline_convnet(precision=None):
    """The book's first convnet: four Conv2D/MaxPooling2D pairs and two Dense layers.

    Parameters
    ----------
    precision : {"auto", "float32", "mixed_bfloat16", "mixed_float16"}, optional
        What the network computes in (default ``CATDOG_PRECISION``); the
        output layer stays float32 either way.

    Returns
    -------
    keras.Sequential
        Compiled with RMSprop(learning_rate=1e-4) and binary cross-entropy;
        3,453,121 parameters for 150x150x3 input.

    Example
    -------
    >>> from catdog_lib import models
    >>> models.baseline_convnet().count_params()
    3453121
    """
    return _book_convnet("baseline_convnet", dropout=0.0, precision=precision)


def dropout_convnet(micro_batches=1, precision=None):
    """The same network with ``Dropout(0.5)`` before the Dense(512) layer.

    Parameters
    ----------
    micro_batches : int
        Update the weights once every ``micro_batches`` batches, with the
        mean of their gradients: batches of 16 with ``micro_batches=2``
        train like the book's batches of 32, in less memory.
    precision : str, optional
        As for ``baseline_convnet``.

    Returns
    -------
    keras.Sequential
        Compiled as ``baseline_convnet``; 3,453,121 parameters.

    Example
    -------
    >>> from catdog_lib import models
    >>> [layer.name for layer in models.dropout_convnet().layers][-4:]
    ['flatten', 'dropout', 'dense_1', 'dense_2']
    """
    return _book_convnet("dropout_convnet", dropout=0.5, micro_batches=micro_batches,
                         precision=precision)


def print_summary(model):
    """Print layers, output shapes and parameter counts in the book's plain layout.

    Keras 3's own ``model.summary()`` draws a rich table that some frontends
    show as an extra empty HTML box; this prints the same numbers as text.

    Example
    -------
    >>> from catdog_lib import models
    >>> models.print_summary(models.baseline_convnet())  # doctest: +ELLIPSIS
    Model: "baseline_convnet"
    ...
    Total params: 3,453,121
    Trainable params: 3,453,121
    Non-trainable params: 0
    """
    names = [f"{layer.name} ({type(layer).__name__})" for layer in model.layers]
    width = max(34, *(len(name) + 2 for name in names))
    rule = "=" * (width + 34)
    print(f'Model: "{model.name}"')
    print(f"{'Layer (type)':<{width}}{'Output Shape':<24}{'Param #':>10}")
    print(rule)
    for name, layer in zip(names, model.layers):
        print(f"{name:<{width}}{str(layer.output.shape):<24}{layer.count_params():>10,}")
    print(rule)
    trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    print(f"Total params: {model.count_params():,}")
    print(f"Trainable params: {trainable:,}")
    print(f"Non-trainable params: {model.count_params() - trainable:,}")


def flops_per_image(model):
    """Floating-point operations per image, forward and for one training step.

    Convolutions and dense layers only, 2 FLOPs per multiply-add, as
    ``benchmarks/speed.py`` counts the book's network: batch norm, ReLU,
    pooling and additions are left out, which is why a network with batch
    norm or separable convolutions runs slower per FLOP. Training is the
    forward pass plus the two backward products of each layer (the
    gradients of its weights and of its input), less the gradient of the
    input image, which nobody needs.

    Parameters
    ----------
    model : keras.Model
        A built model with one input.

    Returns
    -------
    dict
        ``{"forward": int, "training": int}``.

    Example
    -------
    >>> from catdog_lib import models
    >>> models.flops_per_image(models.baseline_convnet())
    {'forward': 472190976, 'training': 1378722816}
    """
    forward, first = 0, None
    for layer in model.layers:
        if not isinstance(layer, (layers.Conv2D, layers.SeparableConv2D,
                                  layers.DepthwiseConv2D, layers.Dense)):
            continue
        cin, out = layer.input.shape[-1], layer.output.shape
        positions = int(np.prod(out[1:-1]))  # output pixels, or 1 for Dense
        if isinstance(layer, layers.Dense):
            flops = 2 * cin * out[-1]
        elif isinstance(layer, layers.DepthwiseConv2D):
            flops = 2 * positions * int(np.prod(layer.kernel_size)) * cin * layer.depth_multiplier
        elif isinstance(layer, layers.SeparableConv2D):
            depthwise = int(np.prod(layer.kernel_size)) * cin * layer.depth_multiplier
            flops = 2 * positions * (depthwise + cin * layer.depth_multiplier * out[-1])
        else:
            flops = 2 * positions * int(np.prod(layer.kernel_size)) * cin * out[-1]
        first = first or flops
        forward += flops
    return {"forward": forward, "training": 3 * forward - first}
