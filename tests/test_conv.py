"""catdog_lib.conv computes what Keras computes, with the same weights."""
import keras
import numpy as np
import pytest

from catdog_lib import conv, models


def keras_conv(image, kernel, stride, padding):
    layer = keras.layers.Conv2D(kernel.shape[-1], kernel.shape[0], strides=stride,
                                padding=padding, use_bias=False)
    layer.build((1, *image.shape))
    layer.set_weights([kernel])
    return np.asarray(layer(image[None]))[0]


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("filters", [1, 4])
@pytest.mark.parametrize("size", [(9, 9), (10, 7)])
def test_conv2d_equals_keras(padding, stride, channels, filters, size):
    rng = np.random.default_rng(0)
    image = rng.normal(size=(*size, channels)).astype("float32")
    kernel = rng.normal(size=(3, 3, channels, filters)).astype("float32")
    ours = conv.conv2d(image, kernel, stride, padding)
    theirs = keras_conv(image, kernel, stride, padding)
    assert ours.shape == theirs.shape
    assert ours.shape[:2] == tuple(conv.output_size(n, 3, stride, padding) for n in size)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_single_kernel_on_grayscale_gives_a_2d_map():
    image = np.random.default_rng(1).random((12, 12)).astype("float32")
    ours = conv.conv2d(image, conv.kernel("sobel x (vertical edges)"))
    theirs = keras_conv(image[..., None], conv.kernel("sobel x (vertical edges)")[..., None, None],
                        1, "valid")
    assert ours.shape == (10, 10)
    np.testing.assert_allclose(ours, theirs[..., 0], atol=1e-5)


@pytest.mark.parametrize("shape", [(8, 8, 1), (9, 7, 3)])
def test_max_pool_equals_keras(shape):
    x = np.random.default_rng(2).normal(size=shape).astype("float32")
    theirs = np.asarray(keras.layers.MaxPooling2D(2)(x[None]))[0]
    np.testing.assert_array_equal(conv.max_pool2d(x, 2), theirs)


def test_unknown_padding_is_refused():
    with pytest.raises(ValueError, match="padding must be"):
        conv.conv2d(np.zeros((5, 5)), np.ones((3, 3)), padding="full")


def test_book_table_agrees_with_the_keras_model():
    model = models.baseline_convnet()
    table = {row["layer"]: row for row in conv.book_network_table()}
    for layer in model.layers[1:]:
        row = table[layer.name]
        assert tuple(layer.output.shape[1:]) == row["shape"]
        assert layer.count_params() == row["params"]
    assert [r["receptive_field"] for r in conv.book_network_table()[:8]] == \
        [3, 4, 8, 10, 18, 22, 38, 46]


def test_shift_moves_the_feature_map_with_the_image():
    image = np.random.default_rng(3).random((20, 20)).astype("float32")
    k = conv.kernel("outline")
    moved = conv.conv2d(conv.shift(image, 2, 3), k)
    original = conv.conv2d(image, k)
    np.testing.assert_allclose(moved[4:, 5:], original[2:-2, 2:-3], atol=1e-5)
