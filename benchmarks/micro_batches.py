"""Notebook 04's training in batches of 32, or as 2 micro-batches of 16 per update.

Both train the dropout model on augmented photos with the `quick` profile's
epochs and updates (each update on 32 images), each in a fresh process so
that its peak memory is its own, interleaved (32, 16x2, 32, 16x2, ...) so that
machine noise hits both. Peak memory is sampled every 50 ms: resident, and
anonymous (resident less the pages mapped from files).

    python benchmarks/micro_batches.py --source ../shared/data/dogs-vs-cats/train --rounds 1

Writes ``benchmarks/results/micro_batches_<cpu tag>.json``, one file per machine
(``micro_batches.json``: an earlier run that did not record its CPU).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import tempfile
import time
from pathlib import Path

from speed import summarize  # benchmarks/speed.py: median, range and values

os.environ["CATDOG_PROFILE"] = "quick"
os.environ.setdefault("CATDOG_UNATTENDED", "1")

RESULTS = Path(__file__).resolve().parent / "results"


def train_once(source, micro_batches):
    """Train as notebook 04 does; return seconds, peak memory and the history."""
    import psutil

    me, peak = psutil.Process(), {"mb": 0.0, "anon_mb": 0.0}

    def sample():
        while True:
            info = me.memory_info()
            peak["mb"] = max(peak["mb"], info.rss / 2**20)
            peak["anon_mb"] = max(peak["anon_mb"], (info.rss - info.shared) / 2**20)
            time.sleep(0.05)

    threading.Thread(target=sample, daemon=True).start()
    from catdog_lib import augment, config, data, models, train

    prepared = data.prepare_small_dataset(source)
    batch = config.BATCH_SIZE // micro_batches
    train_ds, val_ds, _ = data.load_datasets(prepared.dest, batch_size=batch)
    profile = config.profile()
    run_name = f"bench-micro-batches-{micro_batches}"
    # A fresh runs folder of this process's own, so nothing resumes and nothing is left.
    runs = tempfile.mkdtemp(prefix="catdog-bench-")
    os.environ["CATDOG_RUNS_DIR"] = runs
    start = time.perf_counter()
    model = models.dropout_convnet(micro_batches=micro_batches)
    model.fit(augment.augment(train_ds, batch_size=batch).repeat(), validation_data=val_ds,
              epochs=profile["augmented_epochs"], verbose=config.verbose(), shuffle=False,
              steps_per_epoch=profile["augmented_steps"] * micro_batches,
              callbacks=train.run_callbacks(model, run_name, prepared.dest))
    history = train.saved_history(run_name)
    seconds = time.perf_counter() - start
    shutil.rmtree(runs)
    return {"micro_batches": micro_batches, "batch_size": batch, "fit_seconds": seconds,
            "peak_mb": peak["mb"], "peak_anon_mb": peak["anon_mb"],
            "val_accuracy": history["val_accuracy"], "data": data.describe(prepared.dest)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", help="Kaggle train folder or zip (default: as prepare-data)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(train_once(args.source, args.one)))
        return
    runs = []
    for _ in range(args.rounds):
        for micro_batches in (1, 2):
            command = [sys.executable, __file__, "--one", str(micro_batches)]
            command += ["--source", args.source] if args.source else []
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            runs.append(json.loads(out.strip().splitlines()[-1]))
            print(runs[-1]["micro_batches"], round(runs[-1]["fit_seconds"]),
                  round(runs[-1]["peak_mb"]), round(runs[-1]["peak_anon_mb"]), flush=True)
    # Only now: the parent holds no TensorFlow while the children are measured.
    from catdog_lib import train

    cpu = train.cpu()
    whole = [r for r in runs if r["micro_batches"] == 1]
    split = [r for r in runs if r["micro_batches"] == 2]
    result = {
        "command": "python benchmarks/micro_batches.py " + " ".join(sys.argv[1:]),
        "machine": {"cpu": cpu},
        "runs": runs,
        "time_ratio_16x2_over_32": summarize([s["fit_seconds"] / w["fit_seconds"]
                                            for w, s in zip(whole, split)]),
        "peak_mb_saved": summarize([w["peak_mb"] - s["peak_mb"] for w, s in zip(whole, split)]),
        "peak_anon_mb_saved": summarize([w["peak_anon_mb"] - s["peak_anon_mb"]
                                       for w, s in zip(whole, split)]),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"micro_batches_{cpu['tag']}.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
