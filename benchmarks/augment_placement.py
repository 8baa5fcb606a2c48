"""Where should augmentation run: in the tf.data map, or inside the model?

Trains the dropout model for a fixed number of augmented batches both ways,
interleaved (map, model, map, model, ...) so that machine noise hits both,
and reports the per-pair time ratio.

    python benchmarks/augment_placement.py --steps 20 --rounds 3

Writes ``benchmarks/results/augment_placement_<cpu tag>.json``, one file per
machine (``augment_placement.json``: an earlier run that did not record its
CPU). The toy set is used: the cost of the transforms does not depend on what
the photos show.
"""
import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("CATDOG_UNATTENDED", "1")

# catdog_lib first: it imports TensorFlow without its C++ start-up lines.
from catdog_lib import augment, data, models, train  # noqa: E402
import keras  # noqa: E402


def timed_steps(model, dataset, steps):
    model.fit(dataset, steps_per_epoch=2, epochs=1, verbose=0)  # warm-up: tracing, caches
    start = time.perf_counter()
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    prepared = data.prepare_small_dataset("toy")
    train_ds = data.load_datasets(prepared.dest)[0].repeat()

    in_map = models.dropout_convnet()
    map_ds = augment.augment(train_ds)

    core = models.dropout_convnet()
    in_model = keras.Sequential([keras.Input(core.input_shape[1:]), augment.book_augmentation(), core])
    in_model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=1e-4),
                     loss="binary_crossentropy", metrics=["accuracy"])

    rows = []
    for _ in range(args.rounds):
        t_map = timed_steps(in_map, map_ds, args.steps)
        t_model = timed_steps(in_model, train_ds, args.steps)
        rows.append({"map_seconds": t_map, "model_seconds": t_model, "model_over_map": t_model / t_map})
        print(rows[-1], flush=True)
    ratios = [r["model_over_map"] for r in rows]
    cpu = train.cpu()
    result = {
        "question": "augmentation in the tf.data map vs inside the model, dropout convnet, batch 32",
        "steps_per_measurement": args.steps, "rounds": rows,
        "median_model_over_map": statistics.median(ratios),
        "range_model_over_map": [min(ratios), max(ratios)],
        "images_per_second_map": args.steps * 32 / statistics.median(r["map_seconds"] for r in rows),
        "images_per_second_model": args.steps * 32 / statistics.median(r["model_seconds"] for r in rows),
        "machine": {"cpu": cpu},
    }
    out = Path(__file__).resolve().parent / "results" / f"augment_placement_{cpu['tag']}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"inside the model takes {result['median_model_over_map']:.2f}x the time of the map "
          f"(median of {args.rounds}) -> {out}")


if __name__ == "__main__":
    main()
