"""Reproduce the book's section 5.2 on the real photos with the `full` profile.

For each model and seed it trains, evaluates on the test set, and writes
``benchmarks/results/reproduce_<model>_seed<N>.json`` (history, test metrics,
seconds per epoch, versions). With ``--reference`` the first seed's result is
also written to ``catdog_lib/reference/<model>.json``, which the notebooks
plot beside a student's run.

    python benchmarks/reproduce_book.py --source ../shared/data/dogs-vs-cats/train \\
        --models baseline augmented --seeds 1 2 --reference

The runs resume if interrupted (they live in ``runs/reproduce-*``), on the
machine that started them only.
"""
import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ["CATDOG_PROFILE"] = "full"
os.environ.setdefault("CATDOG_UNATTENDED", "1")

# catdog_lib first: it imports TensorFlow without its C++ start-up lines.
from catdog_lib import augment, config, data, models, train  # noqa: E402
import keras  # noqa: E402


RESULTS = Path(__file__).resolve().parent / "results"


def run_one(model_name, seed, prepared):
    run_name = f"reproduce-{model_name}-seed{seed}"
    if why := train.machine_mismatch(run_name):  # before anything trains
        sys.exit(why)
    # The seed goes to everything that draws at random: the weights, the data
    # order and the augmentation; run_callbacks records it in run.json.
    keras.utils.set_random_seed(seed)
    profile = config.profile()
    batch_size = config.batch_size(model_name)
    train_ds, val_ds, test_ds = data.load_datasets(prepared.dest, batch_size=batch_size, seed=seed)
    if model_name == "baseline":
        model, epochs, steps = models.baseline_convnet(), profile["baseline_epochs"], None
    else:
        model, epochs = models.dropout_convnet(), profile["augmented_epochs"]
        steps = profile["augmented_steps"]
        train_ds = augment.augment(train_ds, augment.book_augmentation(seed=seed))
    started = time.perf_counter()
    model.fit(train_ds.repeat() if steps else train_ds, validation_data=val_ds, epochs=epochs,
              steps_per_epoch=steps, verbose=config.verbose(), shuffle=False,
              callbacks=train.run_callbacks(model, run_name, prepared.dest, seed))
    history = train.saved_history(run_name)
    best = train.load_best(run_name)
    last_test = train.evaluate(model, test_ds)
    best_test = train.evaluate(best, test_ds)
    return {
        "model": model_name, "seed": seed, "epochs": epochs,
        "batch_size": batch_size,
        "images_per_epoch": steps * batch_size if steps else sum(prepared.counts["train"].values()),
        "history": history,
        "best_val_accuracy": max(history["val_accuracy"]),
        "final_val_accuracy": history["val_accuracy"][-1],
        "final_train_accuracy": history["accuracy"][-1],
        "test": {"final_model": {"loss": last_test["loss"], "accuracy": last_test["accuracy"],
                                 "confusion": last_test["confusion"].tolist()},
                 "best_val_model": {"loss": best_test["loss"], "accuracy": best_test["accuracy"],
                                    "confusion": best_test["confusion"].tolist()}},
        "median_seconds_per_epoch": statistics.median(history["seconds"]),
        "wall_seconds_this_call": time.perf_counter() - started,
        "data": f"real photos, {prepared.note}, {prepared.canonical} files byte-identical "
                "to the Kaggle originals",
        "info": train.run_info(model, prepared.dest, seed),
    }


def _refuse_another_machines_result(out):
    """Stop, before anything trains, when ``out`` holds a result made on another
    CPU (or on one that was not recorded): one machine's figures never replace another's."""
    if not out.exists():
        return
    made_on, here = json.loads(out.read_text())["info"].get("cpu"), train.cpu()
    if made_on is None or made_on["tag"] != here["tag"]:
        where = train.cpu_label(made_on) if made_on else "a CPU it did not record"
        sys.exit(f"{config.display_path(out)} holds this seed's result from {where}, and this "
                 f"machine is {train.cpu_label(here)}: it is kept. Move it aside to run "
                 "the seed here, or choose another seed.")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", help="Kaggle train folder or zip (default: as prepare-data)")
    parser.add_argument("--models", nargs="+", default=["baseline", "augmented"],
                        choices=["baseline", "augmented"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--reference", action="store_true",
                        help="also write the first seed's run to catdog_lib/reference/")
    args = parser.parse_args(argv)
    prepared = data.prepare_small_dataset(args.source)
    if prepared.source == "toy":
        sys.exit("reproduce_book.py needs the real photos; give --source or CATDOG_KAGGLE_TRAIN")
    RESULTS.mkdir(parents=True, exist_ok=True)
    planned = [(model_name, seed, RESULTS / f"reproduce_{model_name}_seed{seed}.json")
               for model_name in args.models for seed in args.seeds]
    for _, _, out in planned:
        _refuse_another_machines_result(out)
    for model_name, seed, out in planned:
        result = run_one(model_name, seed, prepared)
        out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"{model_name} seed {seed}: best val {result['best_val_accuracy']:.3f}, "
              f"test {result['test']['final_model']['accuracy']:.3f} -> {out}", flush=True)
        if args.reference and seed == args.seeds[0]:
            config.REFERENCE_DIR.mkdir(exist_ok=True)
            (config.REFERENCE_DIR / f"{model_name}.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
