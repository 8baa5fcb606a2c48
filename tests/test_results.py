"""The README's results tables, and the figures the notebooks quote, come
from the committed runs."""
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
from reproduction_table import RESULTS, load  # noqa: E402  (benchmarks/reproduction_table.py)


@pytest.mark.parametrize("family", ["baseline", "augmented"])
def test_readme_results_table_is_what_reproduction_table_prints(family):
    printed = subprocess.run([sys.executable, "benchmarks/reproduction_table.py", family],
                             cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert printed.strip() in (REPO / "README.md").read_text()


@pytest.mark.parametrize("path", sorted(RESULTS.glob("reproduce_*.json")),
                         ids=lambda p: p.name)
def test_each_committed_run_records_the_seed_it_was_run_with(path):
    result = json.loads(path.read_text())
    assert path.stem.endswith(f"_seed{result['seed']}")
    assert result["info"]["seed"] == result["seed"]


def notebook_prose(name):
    cells = json.loads((REPO / "notebooks" / name).read_text())["cells"]
    return " ".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def train_range(family):
    """The range of final training accuracy over a family's committed seeds: "0.906-0.955"."""
    finals = [run["final_train_accuracy"] for run in load(family)]
    return f"{min(finals):.3f}-{max(finals):.3f}"


def test_notebook_prose_quotes_the_committed_runs():
    """The exercises and 04's "Reading the curves" quote the reference runs and
    other committed results; if one is replaced, this names the sentence to rewrite."""
    from catdog_lib import config, train

    base = train.reference_history("baseline")["history"]
    aug = train.reference_history("augmented")["history"]
    best = base["val_accuracy"].index(max(base["val_accuracy"]))
    low = base["val_loss"].index(min(base["val_loss"]))
    prose03 = " ".join(notebook_prose("03_baseline_convnet.ipynb").split())
    for quote in (f"best at epoch {best + 1} ({base['val_accuracy'][best]:.3f})",
                  f"lowest at epoch {low + 1} ({base['val_loss'][low]:.3f}, "
                  f"with accuracy {base['val_accuracy'][low]:.3f})",
                  f"risen to {base['val_loss'][best]:.3f} by epoch {best + 1}",
                  "training accuracy was {}, against {} with batches of 20".format(
                      *(train_range(f"baseline{kind}") for kind in ("_batch32", ""))),
                  "the reference first passed 0.65 after {} updates (epoch {})".format(
                      *next((u, i + 1) for i, (u, v) in enumerate(zip(base["updates"],
                                                                       base["val_accuracy"]))
                            if v >= 0.65))):
        assert quote in prose03
    from catdog_lib.cli import notebook_timing

    full03 = notebook_timing("full", "03_baseline_convnet.ipynb")
    assert f"about {full03['seconds'] / 60:.0f} minutes on 2 CPU cores" in prose03

    seeds = sorted(load("augmented"), key=lambda run: run["seed"])
    assert len(seeds) == 3  # as 04 says
    seed2 = next(run for run in seeds if run["seed"] == 2)
    others = " and ".join(f"{100 * run['best_val_accuracy']:.1f}%" for run in seeds[1:])
    aug_low = aug["val_loss"].index(min(aug["val_loss"]))
    quick_test = {}
    for name in ("03_baseline_convnet.ipynb", "04_augmentation_and_dropout.ipynb"):
        figure = notebook_timing("quick", name)["key_figure"]
        quick_test[name[:2]] = figure.split("test accuracy ")[1].split(",")[0]
    quick = config.PROFILES["quick"]
    last20 = aug["val_accuracy"][-20:]
    prose04 = " ".join(notebook_prose("04_augmentation_and_dropout.ipynb").split())
    for quote in (f"lowest at epoch {low + 1} for notebook 03's network and at epoch {aug_low + 1}",
                  f"({aug['val_loss'][-1]:.3f} against {aug['val_loss'][aug_low]:.3f})",
                  f"a best of {100 * max(aug['val_accuracy']):.1f}%",
                  f"to {100 * sum(last20) / 20:.0f}% on average over the last 20 epochs",
                  f"Training accuracy ends at {100 * aug['accuracy'][-1]:.1f}%",
                  f"validation loss is lowest at epoch {aug_low + 1} and only a little higher at "
                  f"epoch {len(aug['val_loss'])}",
                  f"reached bests of {others}: {100 * sum(r['best_val_accuracy'] for r in seeds) / len(seeds):.1f}% "
                  "on average over the three",
                  f"test accuracy {quick_test['04']} against {quick_test['03']}",
                  "weight updates ({} against {})".format(
                      quick["augmented_epochs"] * quick["augmented_steps"],
                      # steps None: the 2,000 training photos once, in batches of 20
                      quick["baseline_epochs"] * 2 * config.SPLIT_SIZES["train"]
                      // config.batch_size("baseline")),
                  f"scored {100 * seed2['test']['final_model']['accuracy']:.1f}% on the test set "
                  f"against {100 * seed2['test']['best_val_model']['accuracy']:.1f}%"):
        assert quote in prose04
    hours = [run["median_seconds_per_epoch"] * run["epochs"] / 3600 for run in seeds]
    assert f"100 epochs: about {min(hours):.1f}-{max(hours):.1f} hours on 2 CPU cores" in prose04


def test_notebook_06_quotes_the_committed_runs():
    """06's cost figures: its reference run against the book's three, the side-by-side
    step timing, and its own quick run's time."""
    from catdog_lib import train
    from catdog_lib.cli import notebook_timing

    from modern_convnet import cpu_hours

    modern = train.reference_history("modern")
    book = load("augmented")
    book_hours = [cpu_hours(r["history"], r["epochs"], 2) for r in book]
    book_updates = book[0]["epochs"] * book[0]["images_per_epoch"] // book[0]["batch_size"]
    modern_updates = modern["epochs"] * modern["updates_per_epoch"]
    per_update = [(modern["cpu_hours"] / modern_updates) / (hours / book_updates)
                  for hours in book_hours]
    speed = json.loads((RESULTS / "modern_speed_amd-epyc-avx2-2cpu.json").read_text())
    bf16 = json.loads((RESULTS / "modern_speed_amd-epyc-avx512_bf16-2cpu.json").read_text())
    assert speed["machine"]["precision"] == bf16["machine"]["precision"] == "float32"  # as 06 says
    quick = notebook_timing("quick", "06_a_modern_convnet.ipynb")
    prose = " ".join(notebook_prose("06_a_modern_convnet.ipynb").split())
    for quote in (f"({modern_updates:,} against {book_updates:,})",
                  f"{modern['cpu_hours']:.1f} CPU-hours for the run against {min(book_hours):.1f}-"
                  f"{max(book_hours):.1f} for each of 04's three seeds: {min(per_update):.1f}-"
                  f"{max(per_update):.1f} times as much per update",
                  f"less than the {speed['rows']['wider']['seconds_over_book']:.1f} times section 4 "
                  "gives for the AVX2 CPU",
                  f"took about {speed['rows']['wider']['seconds_over_book']:.1f} times as long per image as the book's "
                  "network on a 2-core AVX2 CPU",
                  f"and {bf16['rows']['wider']['seconds_over_book']:.1f} times on a 2-core CPU with AVX-512",
                  f"(the whole notebook about {quick['seconds'] / 60:.0f})"):
        assert quote in prose


def test_micro_batch_figures_of_06_are_the_committed_ones():
    """The README's Speed and memory paragraphs and 06's markdown quote
    ``micro_batches.py --notebook 06``; if it is re-run, this names what to rewrite."""
    result = json.loads((RESULTS / "micro_batches_06_amd-epyc-avx2-2cpu.json").read_text())
    two = [r for r in result["runs"] if r["micro_batches"] == 2]
    four = [r for r in result["runs"] if r["micro_batches"] == 4]

    def listed(runs, key):
        return " and ".join(f"{r[key]:,.0f}" for r in runs)

    saved, ratio = result["peak_mb_saved"], result["time_ratio_8x4_over_16x2"]
    peaks = sorted(r["peak_mb"] for r in four)
    readme = " ".join((REPO / "README.md").read_text().split())
    for quote in (f"peak memory {saved['median']:.0f} MB lower "
                  f"({saved['min']:.0f}-{saved['max']:.0f} MB): "
                  f"{listed(four, 'peak_mb')} MB against {listed(two, 'peak_mb')} MB resident "
                  f"({listed(four, 'peak_anon_mb')} MB against {listed(two, 'peak_anon_mb')} MB "
                  "anonymous)",
                  f"time {ratio['median']:.2f}x ({ratio['min']:.2f}-{ratio['max']:.2f}): "
                  f"{listed(four, 'fit_seconds')} s against {listed(two, 'fit_seconds')} s",
                  f"peaked at {peaks[0]:,.0f}-{peaks[-1]:,.0f} MB with 4 micro-batches of 8, "
                  f"{saved['median']:.0f} MB lower than with 2 of 16",
                  f"lowered the peak by {saved['min']:.0f}-{saved['max']:.0f} MB"):
        assert quote in readme
    prose = " ".join(notebook_prose("06_a_modern_convnet.ipynb").split())
    assert f"peaked {saved['min']:.0f}-{saved['max']:.0f} MB lower than with 2 batches of 16" in prose


def test_reproduce_book_does_not_resume_a_run_another_machine_started(tmp_path):
    from catdog_lib import train

    run = tmp_path / "runs" / "reproduce-augmented-seed1"
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"cpu": {**train.cpu(), "tag": "other-cpu-2cpu"}}))
    # In a child process: importing reproduce_book sets CATDOG_PROFILE for the process.
    # No data is given: the check comes before anything is loaded or trained.
    check = "import reproduce_book; reproduce_book.run_one('augmented', 1, None)"
    done = subprocess.run([sys.executable, "-c", check], cwd=REPO / "benchmarks",
                          capture_output=True, text=True,
                          env={**os.environ, "CATDOG_RUNS_DIR": str(tmp_path / "runs")})
    assert done.returncode != 0 and "was started on other-cpu-2cpu" in done.stderr, done.stderr
    assert sorted(p.name for p in run.iterdir()) == ["run.json"]


def test_reproduce_book_keeps_a_seed_that_another_machine_ran(tmp_path):
    """A result made on another CPU, or on one it did not record, stops the
    script before any training; this machine's own result may be run again."""
    from catdog_lib import train

    # In a child process: importing reproduce_book sets CATDOG_PROFILE for the process.
    check = ("import sys; from pathlib import Path; import reproduce_book; "
             "reproduce_book._refuse_another_machines_result(Path(sys.argv[1]))")
    other = dict(train.cpu(), model="Other CPU", tag="other-cpu-avx512_bf16-2cpu")
    for made_on, refused in ((None, True), (other, True), (train.cpu(), False)):
        out = tmp_path / "reproduce_augmented_seed1.json"
        out.write_text(json.dumps({"info": {"seed": 1, **({"cpu": made_on} if made_on else {})}}))
        done = subprocess.run([sys.executable, "-c", check, str(out)], cwd=REPO / "benchmarks",
                              capture_output=True, text=True)
        assert (done.returncode != 0) == refused, done.stderr
        if refused:
            assert "reproduce_augmented_seed1.json holds this seed's result from" in done.stderr
            assert ("a CPU it did not record" if made_on is None else "Other CPU") in done.stderr
            assert train.cpu_label(train.cpu()) in done.stderr
        assert json.loads(out.read_text())["info"]["seed"] == 1
