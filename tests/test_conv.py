"""catdog_lib.conv computes what Keras computes, with the same weights."""
import keras
import numpy as np
import pytest
import tensorflow as tf

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
    assert [r["receptive_field"] for r in conv.book_network_table()] == \
        [3, 4, 8, 10, 18, 22, 38, 46, 46, 142, 142]


# What to differentiate, per layer: every channel of the pixel at (2, 3) of a
# feature map (they share one field, and each channel's pooling may pick a
# different pixel); flatten's first 128 units, which are max_pooling2d_4's
# pixel (0, 0); every unit of a dense layer.
def _unit(name, output):
    if name == "flatten":
        return tf.reduce_sum(output[:, :128], axis=1)
    if output.shape.rank == 4:
        return tf.reduce_sum(output[:, 2, 3, :], axis=1)
    return tf.reduce_sum(output, axis=1)


@pytest.fixture(scope="module")
def reached():
    """For each layer, the input rows and columns with a non-zero gradient."""
    model = models.baseline_convnet(precision="float32")
    rng = np.random.default_rng(0)
    # Positive weights (each unit a weighted mean) and positive pixels keep
    # every ReLU active, so no dead unit can hide a pixel from the gradient.
    # Max pooling still passes the gradient to one pixel of each window only,
    # so we take the union over 16 images: with 10, some seeds miss an edge.
    for layer in model.layers:
        if layer.weights:
            kernel, bias = layer.get_weights()
            fan_in = np.prod(kernel.shape[:-1])
            layer.set_weights([rng.uniform(0.5, 1.5, kernel.shape).astype("float32") / fan_in,
                               np.zeros_like(bias)])
    images = tf.constant(rng.uniform(1, 255, (16, 150, 150, 3)), dtype="float32")
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(images)
        x, units = images, {}
        for layer in model.layers:
            x = layer(x)
            units[layer.name] = _unit(layer.name, x)
    result = {}
    for name, unit in units.items():
        # Each image's units depend on that image only, so this is the union over images.
        moved = np.any(tape.gradient(unit, images).numpy() != 0, axis=(0, 3))
        result[name] = (np.flatnonzero(moved.any(axis=1)), np.flatnonzero(moved.any(axis=0)))
    return result


@pytest.mark.parametrize("row", conv.book_network_table(), ids=lambda r: r["layer"])
def test_receptive_fields_match_the_gradient(reached, row):
    # Rows, then columns: no gaps, and as wide as the table says.
    for pixels in reached[row["layer"]]:
        assert len(pixels) == pixels[-1] - pixels[0] + 1 == row["receptive_field"]


def test_the_last_pooling_hides_the_last_8_rows_and_columns(reached):
    rows, cols = reached["dense_2"]
    np.testing.assert_array_equal(rows, np.arange(142))
    np.testing.assert_array_equal(cols, np.arange(142))


def test_shift_moves_the_feature_map_with_the_image():
    image = np.random.default_rng(3).random((20, 20)).astype("float32")
    k = conv.kernel("outline")
    moved = conv.conv2d(conv.shift(image, 2, 3), k)
    original = conv.conv2d(image, k)
    np.testing.assert_allclose(moved[4:, 5:], original[2:-2, 2:-3], atol=1e-5)
