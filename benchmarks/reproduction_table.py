"""Print the README's results table for one family of reproduction runs.

Reads every ``benchmarks/results/reproduce_<family>_seed<N>.json`` written by
``reproduce_book.py`` and prints a Markdown table: the book's figure, the mean
and range over the seeds, and each seed. Nothing is trained or measured here.

    python benchmarks/reproduction_table.py baseline
    python benchmarks/reproduction_table.py augmented
    python benchmarks/reproduction_table.py baseline_batch32
"""
import argparse
import json
import math
import re
import statistics
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

# Deep Learning with Python, 1st ed., section 5.2, figures 5.9-5.10 and 5.12-5.13.
BOOK = {
    "baseline": {"best validation accuracy": "about 0.70-0.72",
                 "final training accuracy": "close to 1.0",
                 "test accuracy, final model": "not reported"},
    "augmented": {"best validation accuracy": "about 0.82",
                  "final training accuracy": "tracks validation",
                  "test accuracy, final model": "not reported"},
}


def load(family):
    """The results of one family, ordered by seed."""
    paths = RESULTS.glob(f"reproduce_{family}_seed*.json")
    runs = [json.loads(p.read_text()) for p in paths
            if re.fullmatch(rf"reproduce_{family}_seed\d+\.json", p.name)]
    if not runs:
        raise SystemExit(f"no results/reproduce_{family}_seed<N>.json in {RESULTS}")
    return sorted(runs, key=lambda run: run["seed"])


def lowest_val_loss(run):
    losses = run["history"]["val_loss"]
    lowest = min(losses)
    return f"{lowest:.2f} (epoch {losses.index(lowest) + 1}), {losses[-1]:.2f}"


def best_val(run):
    accuracies = run["history"]["val_accuracy"]
    return f"{max(accuracies):.3f} (epoch {accuracies.index(max(accuracies)) + 1})"


def largest_jump(run):
    accuracies = run["history"]["val_accuracy"]
    jumps = [abs(after - before) for before, after in zip(accuracies, accuracies[1:])]
    largest = max(jumps)
    epoch = jumps.index(largest) + 1
    return f"{largest:.3f} (epoch {epoch} to {epoch + 1})"


def errors(run):
    (_, cats_as_dogs), (dogs_as_cats, _) = run["test"]["final_model"]["confusion"]
    return f"{cats_as_dogs}, {dogs_as_cats}"


# (row label, value used for the mean and range or None, how one seed is shown)
ROWS = [
    ("best validation accuracy", lambda r: r["best_val_accuracy"], best_val),
    ("final validation accuracy", lambda r: r["final_val_accuracy"], None),
    ("mean validation accuracy, last 20 epochs",
     lambda r: statistics.mean(r["history"]["val_accuracy"][-20:]), None),
    ("largest change in validation accuracy between neighbouring epochs", None, largest_jump),
    ("final training accuracy", lambda r: r["final_train_accuracy"], None),
    ("lowest validation loss (epoch), then at the last epoch", None, lowest_val_loss),
    ("test accuracy, final model", lambda r: r["test"]["final_model"]["accuracy"], None),
    ("test errors of the final model: cats called dogs, dogs called cats", None, errors),
    ("test accuracy, best-validation checkpoint",
     lambda r: r["test"]["best_val_model"]["accuracy"], None),
    ("seconds per epoch: median, fastest", None,
     lambda r: f"{r['median_seconds_per_epoch']:.0f} s, {min(r['history']['seconds']):.0f} s"),
]


def table(runs):
    """The Markdown table for runs of one model, as a string."""
    first = runs[0]
    updates = math.ceil(first["images_per_epoch"] / first["batch_size"])
    header = [f"{first['model']}, {first['epochs']} epochs of {updates} batches of "
              f"{first['batch_size']}", "the book"]
    if len(runs) > 1:
        header.append(f"catdog: mean of {len(runs)} seeds (range)")
    header += [f"seed {run['seed']}" for run in runs]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, value, shown in ROWS:
        cells = [label, BOOK[first["model"]].get(label, "")]
        if len(runs) > 1:
            values = [value(run) for run in runs] if value else None
            cells.append(f"{statistics.mean(values):.3f} ({min(values):.3f}-{max(values):.3f})"
                         if values else "")
        cells += [shown(run) if shown else f"{value(run):.3f}" for run in runs]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("family", help="baseline, augmented, or another reproduce_<family>_seed<N>")
    print(table(load(parser.parse_args(argv).family)))


if __name__ == "__main__":
    main()
