"""Augmentation speed: Keras's four random layers against catdog's one transform.

Keras 3's ``RandomRotation``, ``RandomTranslation``, ``RandomShear`` and
``RandomZoom`` resample each image once per layer; ``augment.book_augmentation``
composes the same transforms into one affine matrix and resamples once. In
one process, interleaved round by round so that machine noise hits all
alike, this measures

- the augmentation alone: images/s and CPU milliseconds per image of
  ``augment.augment``'s ``tf.data`` map (one image at a time, AUTOTUNE)
  over one pass of the training set, with the four layers and with the
  composed one;
- input waiting: ``steps`` batches of 32 of the book's dropout convnet
  trained on each augmented pipeline, against the same number of batches
  already in memory, as ``time on the pipeline / time in memory - 1``;
  and the same ratio of CPU times (``extra_cpu``), which other jobs
  sharing the machine disturb far less than wall time.

    python benchmarks/augment_speed.py --source ../shared/data/dogs-vs-cats/train --steps 10 --rounds 8

Writes ``benchmarks/results/augment_speed_<machine>.json``, named after the
CPU so that another machine's figures never overwrite these.
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("CATDOG_UNATTENDED", "1")

# catdog_lib first: it imports TensorFlow without its C++ start-up lines.
from catdog_lib import augment, data, models  # noqa: E402
from catdog_lib.train import cpu as cpu_of_this_machine  # noqa: E402
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402


BATCH = 32  # the book's augmented batches


def machine():
    """The CPU model, its relevant flags, and a short tag for the file name."""
    cpu = cpu_of_this_machine()
    return {"cpu": cpu["model"], "flags": cpu["flags"], "cpu_count": cpu["count"], "tag": cpu["tag"],
            "python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "policy": models.compute_policy()}


def separate_layers(seed=1):
    """The book's augmentation as Keras 3's random layers, one resampling each
    (catdog's ``augment.book_augmentation`` until it composed them)."""
    fill = {"fill_mode": "nearest"}
    return keras.Sequential([
        keras.layers.RandomRotation(40 / 360, seed=seed, **fill),
        keras.layers.RandomTranslation(0.2, 0.2, seed=seed + 1, **fill),
        keras.layers.RandomShear(x_factor=0.2, seed=seed + 2, **fill),
        keras.layers.RandomZoom((-0.2, 0.2), (-0.2, 0.2), seed=seed + 3, **fill),
        keras.layers.RandomFlip("horizontal", seed=seed + 4)])


def timed(work):
    """Wall seconds and CPU seconds (all of this process's threads) of ``work()``.
    CPU time hardly changes when other jobs share the cores; wall time does."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def train(model, dataset, steps):
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)


def spread(values):
    return {"median": statistics.median(values), "range": [min(values), max(values)]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="toy",
                        help="Kaggle train folder or zip (default: the generated toy set)")
    parser.add_argument("--steps", type=int, default=10, help="training batches per measurement")
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args(argv)

    prepared = data.prepare_small_dataset(args.source)
    train_ds = data.load_datasets(prepared.dest, batch_size=BATCH)[0]
    # Fills the decoded-image cache, as a first epoch would.
    n_images = sum(int(x.shape[0]) for x, _ in train_ds)
    versions = {"separate": separate_layers(), "composed": augment.book_augmentation(seed=1)}
    once = {name: augment.augment(train_ds, layer, BATCH) for name, layer in versions.items()}
    pipelines = {name: augment.augment(train_ds.repeat(), layer, BATCH)
                 for name, layer in versions.items()}
    # Ten augmented batches held as tensors, cycled: training with no input work.
    pipelines["memory"] = tf.data.Dataset.from_tensor_slices(
        tuple(tf.stack(t) for t in zip(*pipelines["composed"].take(10)))).repeat()
    model = models.dropout_convnet()
    for name in once:  # warm-up: tracing of the map functions
        list(once[name].take(2))
    for name in pipelines:  # and of the training step, for each kind of input
        train(model, pipelines[name], 2)

    order = ["memory", "separate", "composed"]
    rounds = []
    for r in range(args.rounds):
        # Short measurements, many rounds: other jobs on the machine come and go.
        row = {"load_average": os.getloadavg()[0]}
        for name in once:
            wall, cpu = timed(lambda: list(once[name]))
            row[f"{name}_images_per_second"] = n_images / wall
            row[f"{name}_cpu_ms_per_image"] = 1000 * cpu / n_images
        for name in order[r % 3:] + order[:r % 3]:  # a different one goes first each round
            row[f"{name}_train_seconds"], row[f"{name}_train_cpu_seconds"] = timed(
                lambda: train(model, pipelines[name], args.steps))
        for name in once:
            row[f"{name}_input_waiting"] = (row[f"{name}_train_seconds"]
                                            / row["memory_train_seconds"] - 1)
            row[f"{name}_extra_cpu"] = (row[f"{name}_train_cpu_seconds"]
                                        / row["memory_train_cpu_seconds"] - 1)
        rounds.append(row)
        print(f"round {r + 1}: " + ", ".join(f"{k} {v:.3g}" for k, v in row.items()), flush=True)

    get = lambda key: [row[key] for row in rounds]  # noqa: E731
    about = machine()
    result = {
        "command": "python benchmarks/augment_speed.py " + " ".join(argv or sys.argv[1:]),
        "data": "toy set" if prepared.source == "toy" else f"real photos, {prepared.note}",
        "machine": about,
        "batch_size": BATCH, "train_steps": args.steps,
        "images_per_second": {name: spread(get(f"{name}_images_per_second")) for name in once},
        "composed_over_separate_images_per_second": spread(
            [c / s for c, s in zip(get("composed_images_per_second"),
                                   get("separate_images_per_second"))]),
        "cpu_ms_per_image": {name: spread(get(f"{name}_cpu_ms_per_image")) for name in once},
        "train_seconds": {name: spread(get(f"{name}_train_seconds")) for name in order},
        "input_waiting": {name: spread(get(f"{name}_input_waiting")) for name in once},
        # The fastest measurement of each is the closest to an idle machine.
        "input_waiting_fastest": {name: min(get(f"{name}_train_seconds"))
                                  / min(get("memory_train_seconds")) - 1 for name in once},
        "extra_cpu": {name: spread(get(f"{name}_extra_cpu")) for name in once},
        "rounds": rounds,
        "notes": [
            "images_per_second: augment.augment's map alone over one pass of the training set, "
            "no model.",
            "cpu_ms_per_image: the process's CPU time (all threads) for that pass, per image.",
            "input_waiting: model.fit's wall time on the augmented pipeline over model.fit's on "
            "ten augmented batches held in memory and cycled, the same number of steps, minus 1.",
            "extra_cpu: the same ratio of CPU times, minus 1: the work augmentation adds to "
            "training, which on cores that training already keeps busy becomes waiting. Unlike "
            "wall time, it hardly changes when other jobs share the machine.",
            "Each round measures the augmentation alone, then the three trainings, starting "
            "with a different one each round; load_average is the 1-minute load when the round "
            "began (other jobs on the machine).",
        ],
    }
    out = Path(__file__).resolve().parent / "results" / f"augment_speed_{about['tag']}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("images_per_second", "cpu_ms_per_image", "input_waiting",
                                              "input_waiting_fastest", "extra_cpu")}, indent=1))
    print(f"-> {out}")


if __name__ == "__main__":
    main()
