"""Convolution and pooling in plain NumPy, written to be read.

These compute what ``keras.layers.Conv2D`` and ``MaxPooling2D`` compute, and
the tests prove it. Like Keras (and every deep-learning library), ``conv2d``
slides the kernel without flipping it: strictly speaking a cross-correlation.

Shapes follow Keras: images are ``(height, width)`` or
``(height, width, channels)``; a kernel is ``(kh, kw)``, ``(kh, kw, channels)``
or ``(kh, kw, channels, filters)``.
"""
import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

KERNELS = {
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "sobel x (vertical edges)": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "sobel y (horizontal edges)": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "blur": [[1 / 9] * 3] * 3,
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "emboss": [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]],
    "outline": [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]],
}

# The book's network: (layer name, kind, kernel size, stride, filters).
BOOK_LAYERS = [
    ("conv2d_1", "conv", 3, 1, 32), ("max_pooling2d_1", "pool", 2, 2, None),
    ("conv2d_2", "conv", 3, 1, 64), ("max_pooling2d_2", "pool", 2, 2, None),
    ("conv2d_3", "conv", 3, 1, 128), ("max_pooling2d_3", "pool", 2, 2, None),
    ("conv2d_4", "conv", 3, 1, 128), ("max_pooling2d_4", "pool", 2, 2, None),
]


def kernel(name):
    """A classic 3x3 kernel from ``KERNELS`` as a float32 array."""
    return np.array(KERNELS[name], dtype="float32")


def output_size(n, k, stride=1, padding="valid"):
    """How many positions a window of size ``k`` takes along ``n`` pixels.

    Example
    -------
    >>> from catdog_lib import conv
    >>> conv.output_size(150, 3), conv.output_size(148, 2, stride=2), conv.output_size(5, 3, 2, "same")
    (148, 74, 3)
    """
    if padding == "valid":
        return (n - k) // stride + 1
    if padding == "same":
        return math.ceil(n / stride)
    raise ValueError(f"padding must be 'valid' or 'same', not {padding!r}")


def _pad_same(x, k, stride):
    """Pad as Keras does for 'same': as evenly as possible, the extra pixel
    at the bottom and right."""
    pads = []
    for n in x.shape[:2]:
        total = max((output_size(n, k, stride, "same") - 1) * stride + k - n, 0)
        pads.append((total // 2, total - total // 2))
    return np.pad(x, pads + [(0, 0)])


def conv2d(image, kernel, stride=1, padding="valid"):
    """Slide ``kernel`` over ``image`` and sum the products at each position.

    Parameters
    ----------
    image : array, (H, W) or (H, W, C)
    kernel : array, (k, k), (k, k, C) or (k, k, C, F)
        A square kernel; with F filters the result has F channels.
    stride : int
        Step between positions.
    padding : {"valid", "same"}
        ``valid`` keeps only windows inside the image; ``same`` pads with
        zeros so that the output is ``ceil(H / stride)`` pixels high.

    Returns
    -------
    array
        ``(H', W')`` for one filter, ``(H', W', F)`` for several.

    Example
    -------
    >>> import numpy as np
    >>> from catdog_lib import conv
    >>> image = np.arange(16.0).reshape(4, 4)
    >>> conv.conv2d(image, np.ones((3, 3))).tolist()
    [[45.0, 54.0], [81.0, 90.0]]
    """
    x = np.asarray(image, dtype="float32")
    w = np.asarray(kernel, dtype="float32")
    single_filter = w.ndim < 4
    if x.ndim == 2:
        x = x[..., None]
    if w.ndim == 2:
        w = w[..., None]
    if w.ndim == 3:
        w = w[..., None]
    k = w.shape[0]
    if padding == "same":
        x = _pad_same(x, k, stride)
    elif padding != "valid":
        raise ValueError(f"padding must be 'valid' or 'same', not {padding!r}")
    # windows[i, j] is the k x k x C patch under the kernel at output pixel (i, j).
    windows = sliding_window_view(x, (k, k), axis=(0, 1))[::stride, ::stride]
    out = np.einsum("ijcab,abcf->ijf", windows, w)
    return out[..., 0] if single_filter else out


def max_pool2d(x, size=2):
    """Keep the largest value of each ``size`` x ``size`` block (stride = size).

    Example
    -------
    >>> import numpy as np
    >>> from catdog_lib import conv
    >>> conv.max_pool2d(np.arange(16).reshape(4, 4))
    array([[ 5,  7],
           [13, 15]])
    """
    x = np.asarray(x)
    windows = sliding_window_view(x, (size, size), axis=(0, 1))[::size, ::size]
    return windows.max(axis=(-2, -1))


def shift(image, dy, dx):
    """Move an image ``dy`` pixels down and ``dx`` right, repeating the edge
    pixels into the uncovered strip."""
    h, w = image.shape[:2]
    rows = np.clip(np.arange(h) - dy, 0, h - 1)
    cols = np.clip(np.arange(w) - dx, 0, w - 1)
    return image[rows][:, cols]


def book_network_table(input_size=150, channels=3):
    """Shapes, parameters and receptive fields of the book's network, by arithmetic.

    The receptive field is how many input pixels (along one side) can
    influence one output pixel of a layer: each layer widens it by
    ``(kernel - 1) x (the input-pixel distance between its neighbours)``.
    A dense unit sees every pixel of the last feature map, so its field is
    the span their fields cover together. That can be less than the input:
    pooling rounds down, so the last rows and columns may never count.

    Parameters
    ----------
    input_size : int
        Height (= width) of the input images.
    channels : int
        Channels of the input images.

    Returns
    -------
    list of dict
        One row per layer: ``layer``, ``shape``, ``params``, ``receptive_field``,
        then ``flatten``, ``dense_1`` and ``dense_2``.

    Example
    -------
    >>> from catdog_lib import conv
    >>> rows = conv.book_network_table()
    >>> [r["shape"][0] for r in rows[:8]]
    [148, 74, 72, 36, 34, 17, 15, 7]
    >>> sum(r["params"] for r in rows)
    3453121
    >>> [(r["layer"], r["receptive_field"]) for r in rows[-3:]]
    [('flatten', 46), ('dense_1', 142), ('dense_2', 142)]
    """
    size, depth, field, jump = input_size, channels, 1, 1
    rows = []
    for name, kind, k, stride, filters in BOOK_LAYERS:
        params = (k * k * depth + 1) * filters if kind == "conv" else 0
        depth = filters or depth
        size = output_size(size, k, stride)
        field += (k - 1) * jump
        jump *= stride
        rows.append({"layer": name, "shape": (size, size, depth), "params": params,
                     "receptive_field": field})
    flat = size * size * depth
    # Flatten only lines the pixels up: each of its units still sees one pixel's field.
    rows.append({"layer": "flatten", "shape": (flat,), "params": 0, "receptive_field": field})
    # The last map's pixels sit `jump` input pixels apart, so their fields together
    # cover (size - 1) * jump + field pixels: 6 * 16 + 46 = 142 of the book's 150.
    span = (size - 1) * jump + field
    rows.append({"layer": "dense_1", "shape": (512,), "params": flat * 512 + 512,
                 "receptive_field": span})
    rows.append({"layer": "dense_2", "shape": (1,), "params": 512 + 1,
                 "receptive_field": span})
    return rows


def to_gray(image, height=150):
    """An RGB photo (array or file path) as grayscale floats in [0, 1],
    resized to ``height`` pixels with its aspect ratio kept.

    Example
    -------
    >>> import skimage.data
    >>> from catdog_lib import conv
    >>> conv.to_gray(skimage.data.chelsea()).shape
    (150, 226)
    """
    from PIL import Image

    img = Image.open(image) if not hasattr(image, "shape") else Image.fromarray(np.asarray(image))
    img = img.convert("L")
    width = max(1, round(img.width * height / img.height))
    return np.asarray(img.resize((width, height), Image.BILINEAR), dtype="float32") / 255
