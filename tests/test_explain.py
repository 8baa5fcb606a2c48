"""Looking inside a convnet: each technique checked where the answer is known."""
import keras
import numpy as np
import pytest
from keras import layers

from catdog_lib import explain, models


def quadrant_mass(heatmap, rows, cols):
    h, w = heatmap.shape
    part = heatmap[rows[0] * h // 2:rows[1] * h // 2, cols[0] * w // 2:cols[1] * w // 2]
    return part.sum() / heatmap.sum()


def one_quadrant_model(seed):
    """A random convnet whose answer depends on the top-right quadrant only:
    everything else is cut off and replaced by zeros before its last conv layer."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((32, 32, 3)),
        layers.Rescaling(1 / 255),
        layers.Conv2D(8, 3, padding="same", activation="relu"),
        layers.Cropping2D(((0, 16), (16, 0))),     # keep rows 0-15, columns 16-31
        layers.ZeroPadding2D(((0, 16), (16, 0))),  # and put them back in place
        layers.Conv2D(8, 1, activation="relu", name="last_conv"),
        layers.GlobalAveragePooling2D(),
        layers.Dense(1, activation="sigmoid"),
    ])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_gradcam_finds_the_only_quadrant_the_answer_depends_on(seed):
    model = one_quadrant_model(seed)
    image = np.random.default_rng(seed).random((32, 32, 3)) * 255
    heatmap, p_dog = explain.gradcam(model, image, model.get_layer("last_conv"))
    assert heatmap.shape == (32, 32)
    assert heatmap.max() == pytest.approx(1.0)
    assert quadrant_mass(heatmap, rows=(0, 1), cols=(1, 2)) == pytest.approx(1.0)
    assert p_dog == pytest.approx(float(model.predict(image[None], verbose=0)[0, 0]), abs=1e-6)


def colour_model():
    """P(dog) rises with red and falls with blue: channel 0 detects red,
    channel 1 blue, and the output weighs them +8 and -8."""
    model = keras.Sequential([
        keras.Input((32, 32, 3)),
        layers.Conv2D(2, 1, activation="relu", name="colour"),
        layers.GlobalAveragePooling2D(),
        layers.Dense(1, activation="sigmoid"),
    ])
    red_minus_rest = [1, -0.5, -0.5]
    blue_minus_rest = [-0.5, -0.5, 1]
    kernel = np.array([red_minus_rest, blue_minus_rest], "float32").T.reshape(1, 1, 3, 2) / 255
    model.layers[0].set_weights([kernel, np.zeros(2, "float32")])
    model.layers[2].set_weights([np.array([[8.0], [-8.0]], "float32"), np.zeros(1, "float32")])
    return model


def squares(red_side, blue_side):
    """Grey, with a red square top left and a blue one bottom right."""
    image = np.full((32, 32, 3), 128.0)
    image[2:2 + red_side, 2:2 + red_side] = (255, 0, 0)
    image[30 - blue_side:30, 30 - blue_side:30] = (0, 0, 255)
    return image


def test_gradcam_shows_the_evidence_for_the_answer_given():
    model = colour_model()
    layer = model.get_layer("colour")
    # More red than blue: "dog", and the evidence is the red square alone,
    # not the blue one that speaks against it.
    heatmap, p_dog = explain.gradcam(model, squares(12, 6), layer)
    assert p_dog > 0.5
    assert quadrant_mass(heatmap, rows=(0, 1), cols=(0, 1)) == pytest.approx(1.0)
    # More blue than red: "cat", and the heatmap moves to the blue square.
    heatmap, p_dog = explain.gradcam(model, squares(6, 12), layer)
    assert p_dog < 0.5
    assert quadrant_mass(heatmap, rows=(1, 2), cols=(1, 2)) == pytest.approx(1.0)


def test_gradcam_does_not_vanish_when_the_model_is_sure():
    model = colour_model()
    model.layers[2].set_weights([np.array([[400.0], [-400.0]], "float32"), np.zeros(1, "float32")])
    heatmap, p_dog = explain.gradcam(model, squares(12, 6), model.get_layer("colour"))
    assert p_dog == 1.0  # float32 cannot tell it from 1: P(dog)'s gradient is 0
    assert quadrant_mass(heatmap, rows=(0, 1), cols=(0, 1)) == pytest.approx(1.0)


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16"])
def test_activation_shapes_follow_the_networks_shape_chain(precision):
    model = models.dropout_convnet(precision=precision)
    maps = explain.activations(model, np.full((150, 150, 3), 100.0))
    assert [(layer.name, fmap.shape) for layer, fmap in maps] == [
        ("conv2d_1", (148, 148, 32)), ("max_pooling2d_1", (74, 74, 32)),
        ("conv2d_2", (72, 72, 64)), ("max_pooling2d_2", (36, 36, 64)),
        ("conv2d_3", (34, 34, 128)), ("max_pooling2d_3", (17, 17, 128)),
        ("conv2d_4", (15, 15, 128)), ("max_pooling2d_4", (7, 7, 128))]
    assert all(fmap.dtype == np.float32 for _, fmap in maps)


def test_activations_are_the_layers_own_outputs():
    model = models.dropout_convnet(precision="float32")
    image = np.random.default_rng(0).random((150, 150, 3)) * 255
    maps = explain.activations(model, image)
    pool_2 = keras.Sequential(model.layers[:5])  # rescaling up to max_pooling2d_2
    np.testing.assert_allclose(maps[3][1], pool_2(image[None])[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("layer_index", [1, 3, 7])  # conv2d_1, conv2d_2 and conv2d_4
def test_gradient_ascent_raises_each_chosen_channel_far_above_its_start(layer_index):
    keras.utils.set_random_seed(4)
    model = models.dropout_convnet(precision="float32")
    layer = model.layers[layer_index]
    _, before, _ = explain.filter_patterns(model, layer, list(range(16)), steps=0)
    active = [int(c) for c in np.flatnonzero(before > 0)][:4]
    assert len(active) == 4
    # How much a channel's mean moves between starting noises: the yardstick.
    starts = [explain.filter_patterns(model, layer, active, steps=0, seed=s)[1] for s in range(10)]
    spread = np.std(starts, axis=0)
    images, before, after = explain.filter_patterns(model, layer, active, steps=20)
    assert images.shape == (4, 150, 150, 3)
    assert np.all(after - before > 20 * spread), (before, after, spread)
    # The mean activation is what the ascent raised, measured independently.
    extractor = keras.Sequential(model.layers[:layer_index + 1])
    fmaps = extractor(images).numpy()
    np.testing.assert_allclose([fmaps[i, ..., c].mean() for i, c in enumerate(active)], after,
                               rtol=1e-4)
