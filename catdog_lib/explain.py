"""Looking inside a trained convnet: activations, filter patterns, Grad-CAM.

Notebook 05 shows these three functions as its lesson, cell for cell; a test
keeps the notebook's copies equal to these. They work on any Keras model
with one image input and a last ``Dense(1, activation="sigmoid")`` layer
(P(dog)), in any precision: what they return is float32.
"""
import numpy as np
import tensorflow as tf
from keras import layers


def activations(model, image):
    """What every Conv2D and MaxPooling2D layer outputs for one image.

    Parameters
    ----------
    model : keras.Model
    image : array, (H, W, 3)
        Pixels as the model takes them (0-255 for the book's networks).

    Returns
    -------
    list of (keras.layers.Layer, array (h, w, channels))

    Example
    -------
    >>> import numpy as np
    >>> from catdog_lib import explain, models
    >>> maps = explain.activations(models.dropout_convnet(), np.zeros((150, 150, 3)))
    >>> [fmap.shape[0] for layer, fmap in maps]
    [148, 74, 72, 36, 34, 17, 15, 7]
    """
    x, maps = np.asarray(image, "float32")[None], []
    for layer in model.layers:
        x = layer(x)
        if isinstance(layer, (layers.Conv2D, layers.MaxPooling2D)):
            maps.append((layer, np.asarray(x[0], "float32")))
    return maps


def filter_patterns(model, layer, channels, steps=40, step_size=1.0, seed=0):
    """Gradient ascent in input space: an image that excites each channel.

    Starting from grey noise, each image is changed ``steps`` times in the
    direction that raises the mean activation of its own channel of
    ``layer`` (the book's section 5.4.2, for several channels at once).

    Parameters
    ----------
    model : keras.Model
    layer : keras.layers.Layer
        A layer of ``model``, usually a Conv2D.
    channels : list of int
        One image is grown for each channel.
    steps : int
        Gradient steps; each moves every pixel by about one grey level.
    seed : int
        The starting noise.

    Returns
    -------
    images : array (len(channels), H, W, 3), float32
        The inputs after the ascent, 0-255 scale, not clipped.
    before, after : array (len(channels),)
        Each channel's mean activation for the noise and for the result.

    Example
    -------
    >>> from catdog_lib import explain, models
    >>> model = models.dropout_convnet()
    >>> images, before, after = explain.filter_patterns(model, model.layers[1], [0, 1], steps=2)
    >>> images.shape
    (2, 150, 150, 3)
    """
    up_to_layer = model.layers[:model.layers.index(layer) + 1]
    noise = np.random.default_rng(seed).random((len(channels), *model.inputs[0].shape[1:]))
    images = tf.Variable(128 + 20 * noise, dtype="float32")
    # Picks each image's own channel out of the layer's output.
    picks = tf.one_hot(channels, layer.output.shape[-1])

    def channel_means():
        x = images
        for each in up_to_layer:
            x = each(x)
        fmaps = tf.cast(x, "float32")  # the model may compute in 16 bits (notebook 03)
        return tf.reduce_sum(tf.reduce_mean(fmaps, axis=(1, 2)) * picks, axis=1)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(channel_means())
        grads = tape.gradient(loss, images)
        # Normalised per image, so every step has the same size: the book's trick.
        rms = tf.sqrt(tf.reduce_mean(tf.square(grads), axis=(1, 2, 3), keepdims=True))
        images.assign_add(step_size * grads / tf.maximum(rms, 1e-12))

    before = channel_means().numpy()
    for _ in range(steps):
        step()
    return images.numpy(), before, channel_means().numpy()


def gradcam(model, image, layer):
    """Grad-CAM (Selvaraju et al., 2017): where in ``image`` the evidence for
    the model's answer lies, as seen by ``layer``.

    Each channel of the layer's output is weighted by how much the answer's
    log-odds rise when that channel rises (its mean gradient); the weighted
    sum, with negative values set to zero, is the heatmap.

    Parameters
    ----------
    model : keras.Model
        Its last layer is ``Dense(1, activation="sigmoid")``.
    image : array, (H, W, 3)
    layer : keras.layers.Layer
        Usually the last Conv2D layer: the finest map of the most abstract features.

    Returns
    -------
    heatmap : array (h, w), float32
        The layer's resolution, scaled to a maximum of 1 (all zeros if no
        position speaks for the answer).
    p_dog : float

    Example
    -------
    >>> import numpy as np
    >>> from catdog_lib import explain, models
    >>> model = models.dropout_convnet()
    >>> heatmap, p_dog = explain.gradcam(model, np.zeros((150, 150, 3)), model.layers[7])
    >>> heatmap.shape
    (15, 15)
    """
    head = model.layers[-1]
    x = np.asarray(image, "float32")[None]
    with tf.GradientTape() as tape:
        for each in model.layers[:-1]:
            x = each(x)
            if each is layer:
                fmaps = x
        # The log-odds of "dog", before the sigmoid: unlike P(dog) its
        # gradient does not vanish when the model is sure.
        logit = tf.cast(x, "float32") @ head.kernel + head.bias
        evidence = logit if logit[0, 0] > 0 else -logit  # for the answer given
    grads = tf.cast(tape.gradient(evidence, fmaps), "float32")
    fmaps = tf.cast(fmaps, "float32")  # the model may compute in 16 bits (notebook 03)
    weights = tf.reduce_mean(grads, axis=(0, 1, 2))
    heatmap = tf.nn.relu(tf.reduce_sum(fmaps[0] * weights, axis=-1)).numpy()
    if heatmap.max() > 0:
        heatmap /= heatmap.max()
    return heatmap, float(tf.sigmoid(logit[0, 0]))
