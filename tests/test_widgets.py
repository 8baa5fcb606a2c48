"""The explorers react to their controls, and carry a static snapshot."""
import datetime
import io

import numpy as np
import pytest
import skimage.data
from PIL import Image

from catdog_lib import data, models, train, widgets


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


def upload_value(content, name, kind):
    """What ipywidgets 8 puts in ``FileUpload.value`` after one file is chosen."""
    return ({"name": name, "type": kind, "size": len(content), "content": memoryview(content),
             "last_modified": datetime.datetime.now(datetime.timezone.utc)},)


def png_of(colour, size=(220, 160)):
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def model():
    return models.baseline_convnet(precision="float32")


def test_p_dog_agrees_with_predict(model):
    photo = data.photo_from_array(skimage.data.chelsea())
    expected = model.predict(photo[None], verbose=0)[0, 0]
    assert isinstance(train.p_dog(model, photo), float)
    assert train.p_dog(model, photo) == pytest.approx(expected, abs=1e-6)


def test_photo_predictor_shows_chelsea_then_an_upload_or_the_reason(model):
    explorer = widgets.photo_predictor(model)
    upload, message, picture = explorer.children
    p = train.p_dog(model, data.photo_from_array(skimage.data.chelsea()))
    assert message.value.startswith(f"a photo the model never saw: P(dog) = {p:.2f}, verdict: ")
    assert explorer._repr_mimebundle_()["image/png"].startswith("iVBORw0KGgo")
    first = picture.value

    snow = png_of((250, 250, 250))
    upload.value = upload_value(snow, "snow_dog.png", "image/png")
    p = train.p_dog(model, data.photo_from_bytes(snow, "snow_dog.png"))
    assert message.value.startswith(f"snow_dog.png: P(dog) = {p:.2f}, verdict: ")
    assert picture.value != first

    shown = picture.value
    upload.value = upload_value(b"not a photo at all", "notes.txt", "text/plain")
    assert message.value == ("Cannot use this file. notes.txt: not an image: "
                             "Pillow cannot identify its format")
    assert picture.value == shown


def test_the_verdict_is_unsure_near_one_half():
    sure = models.baseline_convnet(precision="float32")
    for p, verdict in [(0.1, "cat"), (0.4, "cat"), (0.45, "unsure"), (0.59, "unsure"),
                       (0.6, "dog"), (0.97, "dog")]:
        # A zero kernel makes P(dog) the sigmoid of the bias, whatever the photo.
        sure.get_layer("dense_2").set_weights([np.zeros((512, 1)), np.array([np.log(p / (1 - p))])])
        message = widgets.photo_predictor(sure).children[1]
        assert message.value.endswith(f"P(dog) = {p:.2f}, verdict: {verdict}")


def test_activation_explorer_follows_its_layer_and_channel():
    image = np.random.default_rng(2).random((150, 150, 3)) * 255
    explorer = widgets.activation_explorer(models.dropout_convnet(precision="float32"), image)
    (layer, channel), caption, picture = explorer.children[0].children, *explorer.children[1:]
    assert caption.value.startswith("conv2d_1, channel 0 of 32: 148x148")
    assert channel.max == 31
    before = picture.value
    channel.value = 5
    assert caption.value.startswith("conv2d_1, channel 5 of 32") and picture.value != before
    layer.value = 6  # conv2d_4
    assert caption.value.startswith("conv2d_4, channel 5 of 128: 15x15")
    assert channel.max == 127
    channel.value = 127
    layer.value = 1  # max_pooling2d_1: 32 channels, so the slider comes back to 31
    assert channel.max == 31 and caption.value.startswith("max_pooling2d_1, channel 31 of 32: 74x74")


def test_photo_predictor_can_show_the_heatmap(model):
    last_conv = model.layers[7]
    explorer = widgets.photo_predictor(model, heatmap_layer=last_conv)
    with_heatmap = explorer.children[2].value
    plain = widgets.photo_predictor(model).children[2].value
    assert explorer.children[1].value == widgets.photo_predictor(model).children[1].value
    assert Image.open(io.BytesIO(with_heatmap)).width > 1.5 * Image.open(io.BytesIO(plain)).width
