"""A notebook's training in whole batches per update, or split into micro-batches.

Notebook 04: batches of 32 against 2 micro-batches of 16 per update (what
the notebook does). Notebook 06: its 2 micro-batches of 16 against the 4 of 8
that the README's Troubleshooting suggests when a kernel dies. Each trains as
the notebook does with the `quick` profile's epochs and updates (each update
on 32 images), each in a fresh process so that its peak memory is its own,
interleaved (first, second, first, second, ...) so that machine noise hits
both. Peak memory is sampled every 50 ms: resident, and anonymous (resident
less the pages mapped from files).

    python benchmarks/micro_batches.py --source ../shared/data/dogs-vs-cats/train --rounds 1
    python benchmarks/micro_batches.py --source ../shared/data/dogs-vs-cats/train --notebook 06

Writes ``benchmarks/results/micro_batches_<cpu tag>.json`` for notebook 04 and
``micro_batches_06_<cpu tag>.json`` for 06, one file per machine
(``micro_batches.json``: an earlier run of 04 that did not record its CPU).
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
# The micro-batches per update compared for each notebook; the time ratio and
# the memory saved are those of the second against the first.
COMPARED = {"04": (1, 2), "06": (2, 4)}


def train_once(source, notebook, micro_batches):
    """Train as ``notebook`` does; return seconds, peak memory and the history."""
    import psutil

    me, peak = psutil.Process(), {"mb": 0.0, "anon_mb": 0.0}

    def sample():
        while True:
            info = me.memory_info()
            peak["mb"] = max(peak["mb"], info.rss / 2**20)
            peak["anon_mb"] = max(peak["anon_mb"], (info.rss - info.shared) / 2**20)
            time.sleep(0.05)

    threading.Thread(target=sample, daemon=True).start()
    from catdog_lib import augment, config, data, models, modern, train

    prepared = data.prepare_small_dataset(source)
    batch = config.micro_batch_size(micro_batches)
    train_ds, val_ds, _ = data.load_datasets(prepared.dest, batch_size=batch)
    profile = config.profile()
    run_name = f"bench-micro-batches-{micro_batches}"
    # A fresh runs folder of this process's own, so nothing resumes and nothing is left.
    runs = tempfile.mkdtemp(prefix="catdog-bench-")
    os.environ["CATDOG_RUNS_DIR"] = runs
    start = time.perf_counter()
    if notebook == "04":
        model = models.dropout_convnet(micro_batches=micro_batches)
        augmentation, epochs, steps = None, profile["augmented_epochs"], profile["augmented_steps"]
    else:  # 06's network, optimizer and augmentation, as modern_convnet.py trains them
        epochs, steps = profile["modern_epochs"], profile["modern_steps"]
        model = modern.ablation_convnet(modern.RECIPE, decay_steps=epochs * steps,
                                        micro_batches=micro_batches)
        augmentation = augment.stronger_augmentation()
    model.fit(augment.augment(train_ds, augmentation, batch_size=batch).repeat(),
              validation_data=val_ds, epochs=epochs, verbose=config.verbose(), shuffle=False,
              steps_per_epoch=steps * micro_batches,
              validation_steps=profile["validation_steps"],
              callbacks=train.run_callbacks(model, run_name, prepared.dest))
    history = train.saved_history(run_name)
    seconds = time.perf_counter() - start
    shutil.rmtree(runs)
    return {"notebook": notebook, "micro_batches": micro_batches, "batch_size": batch,
            "fit_seconds": seconds, "peak_mb": peak["mb"], "peak_anon_mb": peak["anon_mb"],
            "val_accuracy": history["val_accuracy"], "data": data.describe(prepared.dest)}


def _label(micro_batches):
    """How an update's 32 images go in: "32", or e.g. "16x2" for 2 micro-batches of 16."""
    from catdog_lib import config  # not at import: the parent holds no TensorFlow while measuring

    batch = config.micro_batch_size(micro_batches)
    return str(batch) if micro_batches == 1 else f"{batch}x{micro_batches}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", help="Kaggle train folder or zip (default: as prepare-data)")
    parser.add_argument("--notebook", choices=sorted(COMPARED), default="04")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(train_once(args.source, args.notebook, args.one)))
        return
    first, second = COMPARED[args.notebook]
    runs = []
    for _ in range(args.rounds):
        for micro_batches in (first, second):
            command = [sys.executable, __file__, "--notebook", args.notebook,
                       "--one", str(micro_batches)]
            command += ["--source", args.source] if args.source else []
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            runs.append(json.loads(out.strip().splitlines()[-1]))
            print(runs[-1]["micro_batches"], round(runs[-1]["fit_seconds"]),
                  round(runs[-1]["peak_mb"]), round(runs[-1]["peak_anon_mb"]), flush=True)
    # Only now: the parent holds no TensorFlow while the children are measured.
    from catdog_lib import train

    cpu = train.cpu()
    pairs = list(zip([r for r in runs if r["micro_batches"] == first],
                     [r for r in runs if r["micro_batches"] == second]))
    result = {
        "command": "python benchmarks/micro_batches.py " + " ".join(sys.argv[1:]),
        "machine": {"cpu": cpu},
        "runs": runs,
        f"time_ratio_{_label(second)}_over_{_label(first)}":
            summarize([b["fit_seconds"] / a["fit_seconds"] for a, b in pairs]),
        "peak_mb_saved": summarize([a["peak_mb"] - b["peak_mb"] for a, b in pairs]),
        "peak_anon_mb_saved": summarize([a["peak_anon_mb"] - b["peak_anon_mb"] for a, b in pairs]),
    }
    name = "micro_batches" if args.notebook == "04" else f"micro_batches_{args.notebook}"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}_{cpu['tag']}.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
