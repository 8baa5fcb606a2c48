"""Interactive explorers for the notebooks, built on ipywidgets.

Each explorer also carries a PNG snapshot of its first view. A live Jupyter
kernel shows the widget; GitHub, nbviewer and static HTML exports cannot run
widgets, so they show the snapshot instead of an empty box.
"""
import base64

import ipywidgets as w
import numpy as np

from . import augment, conv, plots


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


def augmentation_explorer(image, n=6, seed=0):
    """One slider per transform of the book's augmentation, applied to a photo.

    Parameters
    ----------
    image : array, (H, W, 3)
        uint8 pixels, e.g. one training image at 150x150.
    n : int
        How many random versions to show.
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
        title = ", ".join(f"{k} {v:g}" for k, v in settings.items()) + f", flip {flip.value}"
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
