"""The explorers react to their controls, and carry a static snapshot."""
import numpy as np

from catdog_lib import widgets


def test_conv_explorer_redraws_on_kernel_stride_and_padding():
    image = np.random.default_rng(0).random((40, 60)).astype("float32")
    explorer = widgets.conv_explorer(image)
    controls, shape, picture = explorer.children
    dropdown, stride, padding = controls.children[0].children
    grid = controls.children[1].children[1]
    assert shape.value == "input 40x60 -> feature map 38x58"
    first = picture.value
    dropdown.value = "blur"
    assert picture.value != first
    assert [c.value for c in grid.children] == [round(1 / 9, 4)] * 9
    stride.value = 2
    assert shape.value == "input 40x60 -> feature map 19x29"
    padding.value = "same"
    assert shape.value == "input 40x60 -> feature map 20x30"
    before = picture.value
    grid.children[4].value = 5.0  # edit one weight by hand
    assert picture.value != before


def test_explorer_display_offers_a_png_snapshot():
    explorer = widgets.conv_explorer(np.ones((20, 20), "float32"))
    bundle = explorer._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["image/png"].startswith("iVBORw0KGgo")  # base64 of the PNG signature


def test_augmentation_explorer_reacts_to_each_slider():
    photo = np.random.default_rng(1).integers(0, 255, (48, 48, 3)).astype("uint8")
    explorer = widgets.augmentation_explorer(photo, n=2)
    sliders, picture = explorer.children[0].children[0].children, explorer.children[1]
    for slider in sliders:
        before = picture.value
        slider.value = slider.max
        assert picture.value != before, slider.description
    flip, again = explorer.children[0].children[1].children
    before = picture.value
    again.click()
    assert picture.value != before
