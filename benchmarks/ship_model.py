"""Ship the augmented reproduction's best checkpoint as the series' trained model.

    python benchmarks/ship_model.py --run reproduce-augmented-seed3 \\
        --source ../shared/data/dogs-vs-cats/train

It reads ``runs/<run>/best.keras`` and the run's result
(``benchmarks/results/reproduce_augmented_seed<N>.json``, so the run must be
finished), writes the weights as float16 to ``catdog_lib/reference/``,
loads them back with ``trained.load``, evaluates them on the test set of the
real photos, and writes the model card (``book_augmented.card.json`` and
``MODEL_CARD.md``). It fails when the reloaded model's test accuracy is more
than 0.5 points from the recorded one, or the file is over 8 MB. It never
replaces a different weights file that is already there: the model is
committed once.
"""
import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("CATDOG_UNATTENDED", "1")

from catdog_lib import config, data, train, trained  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
MAX_BYTES = 8_000_000
TOLERANCE = 0.005  # accuracy, i.e. half a point


def describe_machine(info):
    cpu = info.get("cpu")
    if cpu is None:  # runs started before run_info recorded the CPU
        return f"{info['device']} (model not recorded)"
    return f"{info['device']}: {cpu['model']} ({', '.join(cpu['flags'])}), {cpu['count']} cores"


def card_facts(run_name, run, result, prepared, parameters, sha, size):
    """What the model card says, from the run's own records."""
    history = train.saved_history(run_name)
    best_epoch = max(range(len(history["val_accuracy"])), key=history["val_accuracy"].__getitem__)
    return {
        "run": run_name, "seed": run["seed"], "precision": run["precision"],
        "epochs": len(history["val_accuracy"]), "best_epoch": best_epoch + 1,
        "val_accuracy": history["val_accuracy"][best_epoch],
        "parameters": parameters, "data": f"Kaggle Dogs vs. Cats, {prepared.note}",
        "dataset": run["dataset"],
        "test_accuracy": {"recorded": result["test"]["best_val_model"]["accuracy"]},
        "command": "python benchmarks/ship_model.py --run " + run_name
                   + " --source ../shared/data/dogs-vs-cats/train",
        "run_command": "python benchmarks/reproduce_book.py --source "
                       f"../shared/data/dogs-vs-cats/train --models augmented --seeds {run['seed']}",
        "machine": describe_machine(result["info"]),
        "tensorflow": run["tensorflow"], "keras": run["keras"],
        "sha256": sha, "bytes": size,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a finished reproduce_book.py run")
    parser.add_argument("--source", help="Kaggle train folder or zip (default: as prepare-data)")
    parser.add_argument("--out", type=Path, default=config.REFERENCE_DIR,
                        help="where the weights and card go (default: the package's reference/)")
    args = parser.parse_args(argv)
    run_dir = config.runs_dir() / args.run
    if not (run_dir / "best.keras").is_file():
        sys.exit(f"error: {config.display_path(run_dir)} has no best.keras: no such run")
    run = json.loads((run_dir / "run.json").read_text())
    result_path = RESULTS / f"reproduce_augmented_seed{run['seed']}.json"
    if not result_path.is_file():
        sys.exit(f"error: {result_path.name} is missing: let the run finish first")
    result = json.loads(result_path.read_text())
    prepared = data.prepare_small_dataset(args.source)
    if train.dataset_id(prepared.dest) != run["dataset"]:
        sys.exit(f"error: {config.display_path(prepared.dest)} is not the split {args.run} "
                 "trained on: give the same --source")

    args.out.mkdir(parents=True, exist_ok=True)
    weights, card_path = args.out / trained.WEIGHTS.name, args.out / trained.CARD.name
    new = args.out / f".{weights.name}.new"
    best = train.load_best(args.run)
    sha = trained.save_weights(best, new)
    if weights.exists() and trained.sha256(weights) != sha:
        new.unlink()
        sys.exit(f"error: {weights} holds other weights; the model is committed once. "
                 "Remove it by hand if you mean to replace it.")
    new.replace(weights)
    size = weights.stat().st_size
    card = card_facts(args.run, run, result, prepared, best.count_params(), sha, size)
    card_path.write_text(json.dumps(card, indent=1) + "\n")

    _, _, test_ds = data.load_datasets(prepared.dest, batch_size=config.BATCH_SIZE)
    round_trip = train.evaluate(trained.load(weights, card_path), test_ds)["accuracy"]
    card["test_accuracy"]["round_trip"] = round_trip
    card_path.write_text(json.dumps(card, indent=1) + "\n")
    (args.out / trained.CARD_MARKDOWN.name).write_text(trained.card_markdown(card))
    recorded = card["test_accuracy"]["recorded"]
    print(f"{weights.name}: {size:,} bytes, sha256 {sha}\n"
          f"test accuracy: recorded {recorded:.3f}, after the float16 round trip {round_trip:.3f}")
    if size > MAX_BYTES:
        sys.exit(f"error: {weights.name} is {size:,} bytes, over {MAX_BYTES:,}")
    if abs(round_trip - recorded) > TOLERANCE:
        sys.exit(f"error: the round trip moved test accuracy by more than {TOLERANCE:.1%}")


if __name__ == "__main__":
    main()
