"""Interactive explorers for the notebooks, built on ipywidgets.

Each explorer also carries a PNG snapshot of its first view. A live Jupyter
kernel shows the widget; GitHub, nbviewer and static HTML exports cannot run
widgets, so they show the snapshot instead of an empty box.
"""
import base64

import ipywidgets as w
import matplotlib.pyplot as plt
import numpy as np
import skimage.data

from . import augment, conv, data, explain, plots, train


class Explorer(w.VBox):
    """A VBox whose display also offers ``image/png``: the snapshot."""

    def __init__(self, children, snapshot_png):
        super().__init__(children)
        self.snapshot_png = snapshot_png

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        bundle["image/png"] = base64.b64encode(self.snapshot_png).decode("ascii")
        return bundle


def conv_explorer(image, kernel_name="sobel x (vertical edges)"):
    """Pick or edit a 3x3 kernel, a stride and a padding; see the feature map.

    Parameters
    ----------
    image : array, (H, W)
        Grayscale, values in [0, 1]. Around 150 pixels keeps redrawing fast.
    kernel_name : str
        The kernel shown first, a key of ``conv.KERNELS``.

    Returns
    -------
    Explorer
        Display it (make it the last line of a cell).
    """
    names = list(conv.KERNELS)
    dropdown = w.Dropdown(options=names, value=kernel_name, description="kernel")
    cells = [w.FloatText(value=0.0, layout=w.Layout(width="70px")) for _ in range(9)]
    stride = w.ToggleButtons(options=[1, 2], description="stride")
    padding = w.ToggleButtons(options=["valid", "same"], description="padding")
    picture = w.Image(format="png")
    shape = w.Label()
    state = {"loading": False}

    def redraw(_=None):
        if state["loading"]:
            return
        k = np.array([c.value for c in cells], dtype="float32").reshape(3, 3)
        fmap_shape = conv.conv2d(image, k, stride.value, padding.value).shape
        shape.value = (f"input {image.shape[0]}x{image.shape[1]} -> feature map "
                       f"{fmap_shape[0]}x{fmap_shape[1]}")
        picture.value = plots.to_png(plots.conv_figure(image, k, stride.value, padding.value))

    def load_kernel(_=None):
        state["loading"] = True
        for cell, value in zip(cells, conv.kernel(dropdown.value).ravel()):
            cell.value = round(float(value), 4)
        state["loading"] = False
        redraw()

    dropdown.observe(load_kernel, "value")
    for control in (*cells, stride, padding):
        control.observe(redraw, "value")
    load_kernel()
    grid = w.GridBox(cells, layout=w.Layout(grid_template_columns="repeat(3, 75px)"))
    controls = w.HBox([w.VBox([dropdown, stride, padding]),
                       w.VBox([w.Label("edit the kernel:"), grid])])
    return Explorer([controls, shape, picture], picture.value)


def augmentation_explorer(image, n=7, seed=0):
    """One slider per transform of the book's augmentation, applied to a photo.

    Parameters
    ----------
    image : array, (H, W, 3)
        uint8 pixels, e.g. one training image at 150x150.
    n : int
        How many random versions to show beside the original.
    seed : int
        First random draw; the "new draw" button moves on.

    Returns
    -------
    Explorer
    """
    sliders = {
        "rotation": w.FloatSlider(value=40, min=0, max=90, step=5, description="rotation °"),
        "shift": w.FloatSlider(value=0.2, min=0, max=0.5, step=0.05, description="shift"),
        "shear": w.FloatSlider(value=0.2, min=0, max=0.8, step=0.05, description="shear"),
        "zoom": w.FloatSlider(value=0.2, min=0, max=0.5, step=0.05, description="zoom"),
    }
    flip = w.Checkbox(value=True, description="horizontal flip")
    again = w.Button(description="new draw")
    picture = w.Image(format="png")
    draw = {"seed": seed}

    def redraw(_=None):
        settings = {name: s.value for name, s in sliders.items()}
        block = augment.book_augmentation(**settings, flip=flip.value, seed=draw["seed"])
        title = (f"at most: rotation ±{settings['rotation']:g}°, shift ±{settings['shift']:.0%}, "
                 f"shear ±{settings['shear']:g}, zoom ±{settings['zoom']:.0%}, "
                 + ("mirrored at random" if flip.value else "no mirroring"))
        picture.value = plots.to_png(plots.augmented_grid(image, block, n, title))

    def new_draw(_):
        draw["seed"] += 1
        redraw()

    for control in (*sliders.values(), flip):
        control.observe(redraw, "value")
    again.on_click(new_draw)
    redraw()
    return Explorer([w.HBox([w.VBox(list(sliders.values())), w.VBox([flip, again])]), picture],
                    picture.value)


def _verdict(p):
    """What a P(dog) says: near one half the model cannot tell."""
    if 0.4 < p < 0.6:
        return "unsure"
    return "dog" if p >= 0.6 else "cat"


def _photo_figure(photo, caption, heatmap=None):
    panels = 1 if heatmap is None else 2
    fig, axes = plt.subplots(1, panels, figsize=(3.6 * panels, 4), squeeze=False)
    axes[0, 0].imshow(photo)
    axes[0, 0].set_xlabel("what the model sees: 150x150 pixels", fontsize=8)
    if heatmap is not None:
        plots.overlay(axes[0, 1], photo, heatmap)
        axes[0, 1].set_xlabel("Grad-CAM: the evidence for its answer, red strongest", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(caption, fontsize=9)
    fig.tight_layout(rect=(0, 0.02, 1, 0.98))
    return fig


def photo_predictor(model, image=None, title="a photo the model never saw", heatmap_layer=None):
    """Show a photo with the model's P(dog), and let a student upload their own.

    An upload is checked like a training photo; a file that cannot be used
    (not an image, too large, a broken file) is named with the reason,
    below the button.

    Parameters
    ----------
    model : keras.Model
        A trained cats-vs-dogs model, e.g. the best model of notebook 03.
    image : array, (H, W, 3), optional
        uint8 RGB pixels shown first (default: ``skimage.data.chelsea()``,
        a cat photo that ships with scikit-image).
    title : str
        What the first photo is called above its P(dog).
    heatmap_layer : keras.layers.Layer, optional
        Also show the Grad-CAM heatmap of this layer of ``model`` (see
        ``explain.gradcam``) beside the photo.

    Returns
    -------
    Explorer
        The snapshot shows the first photo and its P(dog).

    Example
    -------
    >>> from catdog_lib import models, widgets
    >>> explorer = widgets.photo_predictor(models.baseline_convnet())
    >>> explorer.children[1].value  # doctest: +ELLIPSIS
    'a photo the model never saw: P(dog) = ..., verdict: ...'
    """
    upload = w.FileUpload(accept="image/*", multiple=False, description="your photo")
    message = w.Label()
    picture = w.Image(format="png")

    def show(photo, name):
        heatmap = None if heatmap_layer is None else explain.gradcam(model, photo, heatmap_layer)[0]
        p = round(train.p_dog(model, photo), 2)  # the verdict must agree with what is shown
        result = f"P(dog) = {p:.2f}, verdict: {_verdict(p)}"
        message.value = f"{name}: {result}"
        picture.value = plots.to_png(_photo_figure(photo, f"{name}\n{result}", heatmap))

    def on_upload(change):
        if not change["new"]:  # the value was cleared
            return
        file = change["new"][0]
        try:
            show(data.photo_from_bytes(file["content"], file["name"]), file["name"])
        except data.BadImage as err:
            message.value = f"Cannot use this file. {err}"

    show(data.photo_from_array(skimage.data.chelsea() if image is None else image), title)
    upload.observe(on_upload, "value")
    return Explorer([upload, message, picture], picture.value)


def activation_explorer(model, image):
    """Pick a layer and a channel; see that channel's activation for ``image``.

    Parameters
    ----------
    model : keras.Model
        A convnet, e.g. the one notebook 05 looks inside.
    image : array, (H, W, 3)
        The photo, 0-255.

    Returns
    -------
    Explorer
        The snapshot shows channel 0 of the first layer.

    Example
    -------
    >>> import numpy as np
    >>> from catdog_lib import models, widgets
    >>> explorer = widgets.activation_explorer(models.dropout_convnet(), np.zeros((150, 150, 3)))
    >>> explorer.children[1].value
    'conv2d_1, channel 0 of 32: 148x148, 0% of positions active, mean 0.000'
    """
    maps = explain.activations(model, image)
    layer = w.Dropdown(options=[(f"{lay.name} ({fmap.shape[0]}x{fmap.shape[1]}x{fmap.shape[2]})", i)
                                for i, (lay, fmap) in enumerate(maps)], description="layer")
    channel = w.IntSlider(value=0, min=0, max=maps[0][1].shape[-1] - 1, description="channel")
    caption = w.Label()
    picture = w.Image(format="png")

    def redraw(_=None):
        lay, fmap = maps[layer.value]
        channel.max = fmap.shape[-1] - 1
        one = fmap[..., channel.value]
        caption.value = (f"{lay.name}, channel {channel.value} of {fmap.shape[-1]}: "
                         f"{one.shape[0]}x{one.shape[1]}, {np.mean(one > 0):.0%} of positions "
                         f"active, mean {one.mean():.3f}")
        fig, (left, right) = plt.subplots(1, 2, figsize=(6.4, 3.3))
        left.imshow(np.asarray(image).astype("uint8"))
        left.set_title("the photo", fontsize=9)
        right.imshow(one, cmap="viridis")
        right.set_title(f"{lay.name}, channel {channel.value}", fontsize=9)
        for ax in (left, right):
            ax.set_xticks([])
            ax.set_yticks([])
        fig.tight_layout()
        picture.value = plots.to_png(fig)

    layer.observe(redraw, "value")
    channel.observe(redraw, "value")
    redraw()
    return Explorer([w.HBox([layer, channel]), caption, picture], picture.value)
