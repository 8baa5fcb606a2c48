"""The book's networks, and the precision they are built with."""
import keras
import numpy as np
import pytest

from catdog_lib import models

XEON_AMX = "fpu vme sse2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile amx_int8"
XEON_AVX512_BF16 = "fpu sse2 avx2 avx512f avx512_bf16"
AMD_AVX2 = "fpu sse2 ssse3 fma avx avx2 sha_ni"


def book_optimizer(model):
    """The optimizer that makes the updates: under mixed_float16 (CATDOG_PRECISION
    may ask for it) Keras wraps it in a LossScaleOptimizer."""
    return getattr(model.optimizer, "inner_optimizer", model.optimizer)


@pytest.mark.parametrize("flags, gpu, policy", [
    (XEON_AMX, None, "mixed_bfloat16"),
    (XEON_AVX512_BF16, None, "mixed_bfloat16"),
    (AMD_AVX2, None, "float32"),
    ("", None, "float32"),
    (AMD_AVX2, (8, 0), "mixed_bfloat16"),
    (AMD_AVX2, (9, 0), "mixed_bfloat16"),
    (AMD_AVX2, (7, 5), "mixed_float16"),
])
def test_choose_policy(flags, gpu, policy):
    assert models.choose_policy(flags, gpu) == policy


def test_baseline_is_the_books_network():
    model = models.baseline_convnet()
    assert model.count_params() == 3_453_121
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Rescaling"] + ["Conv2D", "MaxPooling2D"] * 4 + ["Flatten", "Dense", "Dense"]
    assert [layer.filters for layer in model.layers if hasattr(layer, "filters")] == [32, 64, 128, 128]
    assert tuple(model.layers[-4].output.shape) == (None, 7, 7, 128)
    assert model.layers[0].scale == pytest.approx(1 / 255)
    assert model.layers[-1].activation.__name__ == "sigmoid"
    assert isinstance(book_optimizer(model), keras.optimizers.RMSprop)
    assert float(book_optimizer(model).learning_rate) == pytest.approx(1e-4)
    assert model.loss == "binary_crossentropy"


def test_dropout_model_adds_only_dropout():
    model = models.dropout_convnet()
    assert model.count_params() == 3_453_121
    names = [layer.name for layer in model.layers]
    assert names[names.index("flatten") + 1] == "dropout"
    assert model.get_layer("dropout").rate == 0.5


@pytest.mark.parametrize("micro_batches", [2, 4])
def test_micro_batches_keep_the_books_optimizer(micro_batches):
    optimizer = book_optimizer(models.dropout_convnet(micro_batches=micro_batches))
    assert isinstance(optimizer, keras.optimizers.RMSprop)
    assert float(optimizer.learning_rate) == pytest.approx(1e-4)
    assert optimizer.gradient_accumulation_steps == micro_batches
    assert book_optimizer(models.dropout_convnet()).gradient_accumulation_steps is None


@pytest.mark.parametrize("micro_batches", [2, 4])
def test_micro_batches_make_the_update_of_one_whole_batch(micro_batches):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (32, 150, 150, 3)).astype("uint8")
    y = rng.integers(0, 2, (32, 1)).astype("float32")
    whole = models.dropout_convnet(precision="float32")  # compared at float32 on any machine
    split = models.dropout_convnet(micro_batches=micro_batches, precision="float32")
    # Plain SGD moves each weight by lr * gradient, so equal steps mean equal
    # averaged gradients. RMSprop's first step, lr * g / sqrt(0.1 g^2), is about
    # 3.2 * lr whatever g's size: it cannot tell a sum from a mean, and it blows
    # rounding in near-zero gradients up to a tenth of a step.
    for model, steps in ((whole, None), (split, micro_batches)):
        model.get_layer("dropout").rate = 0.0  # no random masks, so both compute the same
        model.compile(optimizer=keras.optimizers.SGD(0.1, gradient_accumulation_steps=steps),
                      loss="binary_crossentropy")
    split.set_weights(whole.get_weights())
    start = whole.get_weights()
    whole.train_on_batch(x, y)
    size = 32 // micro_batches
    for i in range(micro_batches - 1):
        split.train_on_batch(x[i * size:(i + 1) * size], y[i * size:(i + 1) * size])
        for before, now in zip(start, split.get_weights()):
            np.testing.assert_array_equal(before, now)  # nothing moves before the last part
    split.train_on_batch(x[-size:], y[-size:])
    for one, two, before in zip(whole.get_weights(), split.get_weights(), start):
        step = np.abs(one - before).max()
        assert step > 1e-6  # the update really moved these weights
        np.testing.assert_allclose(two - before, one - before, rtol=1e-3, atol=1e-3 * step)


def test_rescaling_inside_the_model_takes_raw_pixels():
    model = models.baseline_convnet()
    pixels = np.full((1, 150, 150, 3), 255, "uint8")
    rescaled = model.layers[0](pixels.astype("float32"))
    assert float(np.max(rescaled)) == pytest.approx(1.0)


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16", "mixed_float16"])
def test_each_policy_trains_saves_and_reloads(policy, tmp_path):
    model = models.dropout_convnet(precision=policy)
    assert keras.mixed_precision.global_policy().name == "float32"  # the model's, not the process's
    assert model.dtype_policy.name == model.layers[1].dtype_policy.name == policy
    assert model.layers[-1].dtype_policy.name == "float32"  # the output stays float32
    x = np.random.default_rng(0).integers(0, 255, (2, 150, 150, 3)).astype("uint8")
    model.train_on_batch(x, np.array([[0.0], [1.0]]))
    before = np.asarray(model(x))
    assert before.dtype == np.float32
    model.save(tmp_path / "m.keras")
    after = np.asarray(keras.models.load_model(tmp_path / "m.keras")(x))
    np.testing.assert_allclose(before, after, rtol=1e-5, atol=1e-6)


def test_precision_comes_from_the_setting_when_not_given(monkeypatch):
    monkeypatch.setenv("CATDOG_PRECISION", "mixed_bfloat16")
    assert models.baseline_convnet().dtype_policy.name == "mixed_bfloat16"
    assert models.baseline_convnet(precision="float32").dtype_policy.name == "float32"
    monkeypatch.setenv("CATDOG_PRECISION", "auto")
    assert models.baseline_convnet().dtype_policy.name == models.compute_policy("auto")


def test_auto_picks_the_documented_policy_for_this_machine():
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags"))
    if gpus:
        major, minor = tf.config.experimental.get_device_details(gpus[0])["compute_capability"]
        expected = "mixed_bfloat16" if (major, minor) >= (8, 0) else "mixed_float16"
    elif {"amx_bf16", "avx512_bf16"} & set(flags.split()):
        expected = "mixed_bfloat16"
    else:
        expected = "float32"
    assert models.compute_policy("auto") == expected


def test_a_failed_build_restores_the_global_policy():
    with pytest.raises(RuntimeError):
        with models.policy_scope("mixed_float16"):
            raise RuntimeError("build failed")
    assert keras.mixed_precision.global_policy().name == "float32"
