"""How hard is the toy set? Train the book's baseline on it for a few epochs.

The toy set must be learnable well above chance, but not perfectly, in a few
epochs, so the notebooks tell the same story offline as on real photos.

    python benchmarks/toy_difficulty.py --epochs 5

Writes ``benchmarks/results/toy_difficulty_<cpu tag>.json``, one file per machine
(``toy_difficulty.json``: an earlier run; its ``info`` does not record the CPU).
"""
import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("CATDOG_UNATTENDED", "1")

# catdog_lib first: it imports TensorFlow without its C++ start-up lines.
from catdog_lib import config, data, models, train  # noqa: E402
import keras  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    keras.utils.set_random_seed(config.seed())
    prepared = data.prepare_small_dataset("toy")
    train_ds, val_ds, test_ds = data.load_datasets(prepared.dest)
    model = models.baseline_convnet()
    model.fit(train_ds, validation_data=val_ds, epochs=args.epochs, verbose=config.verbose(),
              shuffle=False,
              callbacks=train.run_callbacks(model, "toy-difficulty", prepared.dest))
    history = train.saved_history("toy-difficulty")
    result = train.evaluate(model, test_ds)
    out = Path(__file__).resolve().parent / "results" / f"toy_difficulty_{train.cpu()['tag']}.json"
    out.write_text(json.dumps({
        "epochs": args.epochs, "history": history,
        "test_accuracy": result["accuracy"], "test_confusion": result["confusion"].tolist(),
        "info": train.run_info(model, prepared.dest)}, indent=1) + "\n")
    print(f"val accuracy by epoch: {[round(a, 3) for a in history['val_accuracy']]}; "
          f"test accuracy {result['accuracy']:.3f} -> {out}")


if __name__ == "__main__":
    main()
