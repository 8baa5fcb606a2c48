"""The shipped model's file format: float16 weights checked by sha256 on load."""
import json

import keras
import numpy as np
import pytest

from catdog_lib import data, models, train, trained
from conftest import REAL_TRAIN, REPO


@pytest.fixture
def stored(tmp_path):
    """A seeded dropout network's weights, stored as the shipped model is."""
    keras.utils.set_random_seed(7)
    model = models.dropout_convnet(precision="float32")
    weights, card = tmp_path / "w.npz", tmp_path / "card.json"
    card.write_text(json.dumps({"sha256": trained.save_weights(model, weights)}))
    return model, weights, card


def test_the_weights_come_back_as_float16_rounded_them(stored):
    model, weights, card = stored
    loaded = trained.load(weights, card)
    assert loaded.dtype_policy.name == "float32"
    for original, back in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(back.numpy(), original.numpy().astype("float16").astype("float32"))
    images = np.random.default_rng(0).random((4, 150, 150, 3)) * 255
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0),
                               atol=2e-3)
    assert weights.stat().st_size < 8_000_000


def test_a_missing_file_is_named(stored, tmp_path):
    _, weights, card = stored
    with pytest.raises(trained.ShippedModelError, match="w.npz.gone: the shipped model.s file is missing"):
        trained.load(tmp_path / "w.npz.gone", card)
    with pytest.raises(trained.ShippedModelError, match="nothing.json: the shipped model's file is missing"):
        trained.load(weights, tmp_path / "nothing.json")


def test_a_damaged_file_is_caught_by_its_sha256(stored):
    _, weights, card = stored
    raw = bytearray(weights.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    weights.write_bytes(bytes(raw))
    with pytest.raises(trained.ShippedModelError, match=r"w.npz: its sha256 is [0-9a-f]{64}, but "
                                                        r"card.json says [0-9a-f]{64}"):
        trained.load(weights, card)


def test_weights_of_another_network_are_refused(tmp_path):
    small = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    weights, card = tmp_path / "w.npz", tmp_path / "card.json"
    card.write_text(json.dumps({"sha256": trained.save_weights(small, weights)}))
    with pytest.raises(trained.ShippedModelError, match="do not fit the book's network"):
        trained.load(weights, card)


# ------------------------------------------------------- the model that ships

def test_the_shipped_model_is_what_its_card_says():
    card = json.loads(trained.CARD.read_text())
    assert trained.sha256(trained.WEIGHTS) == card["sha256"]
    assert trained.WEIGHTS.stat().st_size == card["bytes"] <= 8_000_000
    assert trained.CARD_MARKDOWN.read_text() == trained.card_markdown(card)
    result = json.loads((REPO / "benchmarks" / "results" /
                         f"reproduce_augmented_seed{card['seed']}.json").read_text())
    assert card["val_accuracy"] == result["best_val_accuracy"]
    assert card["test_accuracy"]["recorded"] == result["test"]["best_val_model"]["accuracy"]
    assert abs(card["test_accuracy"]["round_trip"] - card["test_accuracy"]["recorded"]) <= 0.005
    assert trained.load().count_params() == 3_453_121


@pytest.mark.skipif(not REAL_TRAIN.is_dir(), reason="the real photos are not on this machine")
def test_the_shipped_model_scores_its_recorded_test_accuracy(tmp_path):
    card = json.loads(trained.CARD.read_text())
    prepared = data.prepare_small_dataset(REAL_TRAIN, tmp_path / "small")
    assert train.dataset_id(prepared.dest) == card["dataset"]  # the split it was trained on
    _, _, test_ds = data.load_datasets(prepared.dest, batch_size=32)
    accuracy = train.evaluate(trained.load(), test_ds)["accuracy"]
    assert abs(accuracy - card["test_accuracy"]["recorded"]) <= 0.005


def test_notebook_05_takes_the_students_model_only_when_it_learned(tmp_path, monkeypatch):
    monkeypatch.setenv("CATDOG_RUNS_DIR", str(tmp_path))
    run = tmp_path / "04_augmented-smoke"
    run.mkdir()
    student = models.dropout_convnet(precision="float32")
    student.save(run / "best.keras")
    for best, expected in ((0.55, "The model that ships with the series"),
                           (0.61, "Your own model from notebook 04 (run 04_augmented-smoke)")):
        (run / "history.json").write_text(json.dumps({"val_accuracy": [0.5, best]}))
        model, which = trained.own_or_shipped("04_augmented-smoke")
        assert which.startswith(expected)
        assert f"{best:.3f}" in which
        shipped = expected.startswith("The model")
        assert np.array_equal(model.weights[0].numpy(), trained.load().weights[0].numpy()) == shipped
    (run / "run.json").write_text(json.dumps({"profile": "smoke"}))
    _, which = trained.own_or_shipped("04_augmented-smoke")
    assert which.endswith("because your run 04_augmented-smoke is a smoke run: a check that the "
                          "cells work, not training.")
    _, which = trained.own_or_shipped("no-such-run")
    assert "you have no run of notebook 04 with this profile" in which


def test_notebook_05_falls_back_to_the_shipped_model_when_the_run_is_damaged(tmp_path,
                                                                             monkeypatch):
    monkeypatch.setenv("CATDOG_RUNS_DIR", str(tmp_path))
    run = tmp_path / "04_augmented-quick"
    run.mkdir()
    (run / "history.json").write_text('{"val_accuracy": [0.5, 0.')  # cut off mid-write
    model, which = trained.own_or_shipped("04_augmented-quick")
    assert which.startswith("The model that ships with the series")
    assert "04_augmented-quick/history.json cannot be read" in which
    assert np.array_equal(model.weights[0].numpy(), trained.load().weights[0].numpy())
