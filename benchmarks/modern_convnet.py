"""Train notebook 06's ablation and its final recipe on the real photos; print the README's tables.

Each row of ``catdog_lib.modern.ABLATION`` changes one thing from the row
above, from notebook 04's recipe to notebook 06's. For each row and seed
this trains ``--epochs`` passes over the 2,000 training photos (63 updates
of 32 each, fed as 2 micro-batches of 16 as in notebook 06), keeps the best-validation checkpoint, and writes
``benchmarks/results/modern/<row>_e<epochs>_seed<N>_<machine>.json``:
history (with seconds per epoch), parameters, FLOPs, CPU-hours and the
machine. Only ``--final`` runs touch the test set, once each, for the
best-validation checkpoint and the final model (and score both on the
unaugmented training photos); the ablation is read on the validation set
alone.

    export CATDOG_PRECISION=float32  # on every machine: runs of several CPUs share the tables
    # the ablation table: every row, the same budget
    python benchmarks/modern_convnet.py --source ../shared/data/dogs-vs-cats/train --epochs 30 --seeds 1 2
    # notebook 06's results, and its reference curves (seed 1)
    python benchmarks/modern_convnet.py --source ../shared/data/dogs-vs-cats/train \\
        --rows stronger_augmentation --epochs 100 --seeds 1 2 --final
    # the row after the recipe, at the recipe's length: it replaces the recipe
    # only if its mean best validation accuracy is higher (see the README)
    python benchmarks/modern_convnet.py --source ../shared/data/dogs-vs-cats/train \\
        --rows deeper --epochs 100 --seeds 1 2 --final
    # the README's tables, from the committed results (nothing is trained)
    python benchmarks/modern_convnet.py --table

Runs resume where they stopped (``runs/modern-<row>-e<epochs>-seed<N>``),
and a row with a result file from this machine is not trained again. A
run resumed on another machine would mix two machines' seconds, so the
results name the machine, and a folder started elsewhere is refused. The
tables group runs by budget and precision, naming every machine. Pin
``CATDOG_PRECISION`` across a resumed run.
"""
import argparse
import json
import math
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

# catdog_lib first: it imports TensorFlow without its C++ start-up lines.
from catdog_lib import augment, config, data, models, modern, train
import keras
from modern_speed import ROWS as TIMED_ROWS


RESULTS = Path(__file__).resolve().parent / "results" / "modern"
BATCH = config.BATCH_SIZE  # per update, fed as MICRO_BATCHES batches, as in notebook 06
MICRO_BATCHES = config.MICRO_BATCHES
ABLATION_INDEX = {row: i for i, row in enumerate(modern.ABLATION)}
# Notebook 06's reference curves, whichever call trains it: seeds may run in separate calls.
REFERENCE_SEED = 1
# The book's augmented reproduction (side by side with 06) and modern_speed.py's files.
BOOK_RUNS = Path(__file__).resolve().parent / "results"


def run_name(row, epochs, seed):
    return f"modern-{row}-e{epochs}-seed{seed}"


def run_one(row, epochs, seed, prepared, final):
    name = run_name(row, epochs, seed)
    if why := train.machine_mismatch(name):  # before anything trains
        sys.exit(why)
    keras.utils.set_random_seed(seed)  # weights, data order and augmentation
    micro = config.micro_batch_size(MICRO_BATCHES)
    train_ds, val_ds, test_ds = data.load_datasets(prepared.dest, batch_size=micro, seed=seed)
    updates_per_epoch = math.ceil(sum(prepared.counts["train"].values()) / BATCH)
    model = modern.ablation_convnet(row, decay_steps=epochs * updates_per_epoch,
                                    micro_batches=MICRO_BATCHES)
    stronger = ABLATION_INDEX[row] >= ABLATION_INDEX["stronger_augmentation"]
    augmentation = (augment.stronger_augmentation if stronger else augment.book_augmentation)
    augmented = augment.augment(train_ds, augmentation(seed=seed), batch_size=micro)
    started = time.perf_counter()
    model.fit(augmented.repeat(), validation_data=val_ds, epochs=epochs,
              steps_per_epoch=updates_per_epoch * MICRO_BATCHES, verbose=config.verbose(),
              shuffle=False, callbacks=train.run_callbacks(model, name, prepared.dest, seed))
    history = train.saved_history(name)
    best = max(history["val_accuracy"])
    cpu = train.cpu()
    result = {
        "row": row, "seed": seed, "epochs": epochs, "batch_size": BATCH,
        "micro_batches": MICRO_BATCHES,
        "updates_per_epoch": updates_per_epoch, "final": final,
        "parameters": model.count_params(), "flops_per_image": models.flops_per_image(model),
        "history": history,
        "images_per_epoch": updates_per_epoch * BATCH,
        "best_val_accuracy": best, "best_epoch": history["val_accuracy"].index(best) + 1,
        "final_val_accuracy": history["val_accuracy"][-1],
        "final_train_accuracy": history["accuracy"][-1],
        "median_seconds_per_epoch": statistics.median(history["seconds"]),
        "cpu_hours": cpu_hours(history, epochs, cpu["count"]),
        "wall_seconds_this_call": time.perf_counter() - started,
        "data": f"real photos, {prepared.note}",
        "info": train.run_info(model, prepared.dest, seed),
    }
    if final:
        result["test"], result["train_accuracy_unaugmented"] = {}, {}
        for label, chosen in (("best_val_model", train.load_best(name)), ("final_model", model)):
            scores = train.evaluate(chosen, test_ds)
            result["test"][label] = {"loss": scores["loss"], "accuracy": scores["accuracy"],
                                     "confusion": scores["confusion"].tolist()}
            # fit's training accuracy is on augmented photos with dropout on,
            # which holds it down. On the plain photos, against validation
            # accuracy: far above it means overfitting; about as low, underfitting.
            result["train_accuracy_unaugmented"][label] = train.evaluate(chosen, train_ds)["accuracy"]
    return result


def cpu_hours(history, epochs, cores):
    """The median epoch's seconds times the epochs and the cores: a shared
    machine's stalls (a few epochs took several times the median) left out."""
    return statistics.median(history["seconds"]) * epochs * cores / 3600


def load():
    return [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))] if RESULTS.exists() else []


def _mean_range(values, digits=3):
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def _book_reproduction():
    runs = [json.loads(p.read_text()) for p in sorted(BOOK_RUNS.glob("reproduce_augmented_seed*.json"))]
    return [r for r in runs if "test" in r]


def _by_budget(runs):
    """Runs grouped by epochs and precision. The CPU changes from one work
    session to the next, and at one precision it changes only the rounding, so seeds
    and rows run on different machines share a group; each run's seconds stay
    its own machine's, and the group names every machine."""
    groups = defaultdict(list)
    for r in runs:
        groups[(r["epochs"], r["info"]["precision"])].append(r)
    return sorted(groups.items())


def _machines(runs):
    return "; ".join(sorted({train.cpu_label(r["info"]["cpu"]) for r in runs}))


def ablation_table(results):
    """Every ablation row: its weights and FLOPs (counted), its time per training
    image against the book's (measured side by side by ``modern_speed.py``, one
    column per machine), and its validation accuracy for each budget run."""
    book = models.flops_per_image(models.baseline_convnet(precision="float32"))["training"]
    speeds = [json.loads(p.read_text()) for p in sorted(BOOK_RUNS.glob("modern_speed_*.json"))]
    groups = _by_budget(r for r in results if not r["final"])
    header = ["row: adds to the row above", "weights", "training FLOPs per image (× the book's)"]
    header += [f"time per training image, × the book's: {train.cpu_label(s['machine']['cpu'])}, "
               f"{s['machine']['precision']}" for s in speeds]
    header += [f"best validation accuracy after {epochs} epochs, mean (range): "
               f"{_machines(runs)}, {precision}" for (epochs, precision), runs in groups] or [
        "best validation accuracy, same budget for every row"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for i, row in enumerate(modern.ABLATION):
        model = modern.ablation_convnet(row, decay_steps=1000, precision="float32")
        flops = models.flops_per_image(model)["training"]
        cells = [f"`{row}`", f"{model.count_params():,}", f"{flops / 1e9:.2f} G ({flops / book:.2f}×)"]
        for speed in speeds:
            # Rows that change only the optimizer or the data share the network above.
            timed = speed["rows"].get(next(r for r in reversed(modern.ABLATION[:i + 1])
                                           if r in TIMED_ROWS))
            if timed:
                low, high = timed["seconds_over_book_range"]
                cells.append(f"{timed['seconds_over_book']:.2f}× ({low:.2f}-{high:.2f})")
            else:
                cells.append("not timed on this machine")
        for _, runs in groups:
            mine = sorted((r for r in runs if r["row"] == row), key=lambda r: r["seed"])
            cells.append(f"{_mean_range([r['best_val_accuracy'] for r in mine])}, "
                         f"seed{'s' * (len(mine) > 1)} {', '.join(str(r['seed']) for r in mine)}"
                         if mine else "not run")
        if not groups:
            cells.append("not run yet")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _last_ten(run):
    """Validation accuracy averaged over the last 10 epochs: steadier than the
    best of many noisy epochs."""
    return statistics.mean(run["history"]["val_accuracy"][-10:])


def _accuracy_cells(runs):
    """The final table's accuracy columns for a group of runs of one recipe."""
    cells = [_mean_range(values) for values in (
        [r["best_val_accuracy"] for r in runs], [_last_ten(r) for r in runs],
        [r["test"]["best_val_model"]["accuracy"] for r in runs],
        [r["test"]["final_model"]["accuracy"] for r in runs])]
    # Runs made before this column existed lack it.
    measured = [r["train_accuracy_unaugmented"]["final_model"] for r in runs
                if "train_accuracy_unaugmented" in r]
    if not measured:
        cells.append("not measured")
    elif len(measured) < len(runs):
        cells.append(f"{_mean_range(measured)}, {len(measured)} of {len(runs)} runs")
    else:
        cells.append(_mean_range(measured))
    return " | ".join(cells)


def _recipe_name(row):
    return "notebook 06's" if row == modern.RECIPE else f"`{row}` (ablation row)"


def final_table(results):
    """Notebook 06's recipe, and any row trained as far, against the book's:
    each seed's test accuracy and cost."""
    finals = sorted((r for r in results if r["final"]),
                    key=lambda r: (ABLATION_INDEX[r["row"]], r["epochs"], r["seed"]))
    book = _book_reproduction()
    lines = ["| recipe | seeds | best validation accuracy | validation accuracy, mean of the last "
             "10 epochs | test accuracy, best-validation checkpoint: mean (range) | test accuracy, "
             "final model | accuracy on the training photos, unaugmented, final model | "
             "CPU-hours per run | machine |",
             "|---|---|---|---|---|---|---|---|---|"]
    if book:
        lines.append(
            f"| the book's (04), {book[0]['epochs']} epochs | {len(book)} | {_accuracy_cells(book)} | "
            f"{_mean_range([cpu_hours(r['history'], r['epochs'], 2) for r in book], 1)} | "
            "2 cores, float32; CPU model not recorded |")
    for row in dict.fromkeys(r["row"] for r in finals):
        for (epochs, precision), runs in _by_budget(r for r in finals if r["row"] == row):
            lines.append(
                f"| {_recipe_name(row)}, {epochs} epochs | {len(runs)} | {_accuracy_cells(runs)} | "
                f"{_mean_range([r['cpu_hours'] for r in runs], 1)} | "
                f"{_machines(runs)}, {precision} |")
    if not finals:
        lines.append("| notebook 06's | not run yet | | | | | | | |")
    return "\n".join(lines)


def _blocks_of_ten(run):
    """Validation accuracy averaged over each of the last three blocks of 10
    epochs (all of a 30-epoch run): is it still rising at the end?"""
    val = run["history"]["val_accuracy"]
    ends = list(range(len(val), 0, -10))[:3][::-1]
    return ", ".join(f"{statistics.mean(val[max(end - 10, 0):end]):.3f}" for end in ends)


def runs_table(results):
    """One line per run, for the figures the README quotes from single runs."""
    runs = sorted(results, key=lambda r: (not r["final"], ABLATION_INDEX[r["row"]],
                                          r["epochs"], r["seed"]))
    lines = ["| run | best validation accuracy (epoch) | validation accuracy, mean of each of "
             "the last three blocks of 10 epochs | last epoch: training accuracy (augmented, "
             "dropout on), validation accuracy | seconds per epoch: median (fastest) | machine |",
             "|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(
            f"| `{r['row']}`, {r['epochs']} epochs, seed {r['seed']}"
            f"{', final' if r['final'] else ''} | {r['best_val_accuracy']:.3f} ({r['best_epoch']}) | "
            f"{_blocks_of_ten(r)} | {r['final_train_accuracy']:.3f}, {r['final_val_accuracy']:.3f} | "
            f"{r['median_seconds_per_epoch']:.0f} ({min(r['history']['seconds']):.0f}) | "
            f"{train.cpu_label(r['info']['cpu'])}, {r['info']['precision']} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", help="Kaggle train folder or zip (default: as prepare-data)")
    parser.add_argument("--rows", nargs="+", default=list(modern.ABLATION), choices=modern.ABLATION)
    parser.add_argument("--epochs", type=int, default=30,
                        help="passes over the 2,000 training photos, the same for every row")
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--final", action="store_true",
                        help="final models: evaluate them on the test set, and write the "
                             "recipe's seed-1 run to catdog_lib/reference/modern.json")
    parser.add_argument("--table", action="store_true",
                        help="print the README's tables from the committed results and stop")
    args = parser.parse_args(argv)
    if args.table:
        results = load()
        print("\n\n".join([final_table(results), ablation_table(results), runs_table(results)]))
        return
    # Every row of one seed before the next seed: a table that stops early is whole.
    planned = []
    for seed in args.seeds:
        for row in args.rows:
            out = RESULTS / f"{row}_e{args.epochs}_seed{seed}_{train.cpu()['tag']}.json"
            if out.exists():  # a fresh checkout has no runs/ folder to resume from
                print(f"{row} seed {seed}: already measured on this machine, {out}; "
                      "delete that file to train it again", flush=True)
            else:
                planned.append((seed, row, out))
    if not planned:
        return
    os.environ["CATDOG_PROFILE"] = "full"
    os.environ.setdefault("CATDOG_UNATTENDED", "1")
    prepared = data.prepare_small_dataset(args.source)
    if prepared.source == "toy":
        sys.exit("modern_convnet.py needs the real photos; give --source or CATDOG_KAGGLE_TRAIN")
    RESULTS.mkdir(parents=True, exist_ok=True)
    for seed, row, out in planned:
        result = run_one(row, args.epochs, seed, prepared, args.final)
        out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"{row} seed {seed}: best val {result['best_val_accuracy']:.3f} "
              f"(epoch {result['best_epoch']}), {result['median_seconds_per_epoch']:.0f} s/epoch"
              f" -> {out}", flush=True)
        if args.final and seed == REFERENCE_SEED and row == modern.RECIPE:
            (config.REFERENCE_DIR / "modern.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
