"""Command line: ``python -m catdog_lib prepare-data | run | refresh-notebooks``.

- ``prepare-data`` builds the book's split (see ``data.prepare_small_dataset``).
- ``run`` executes every notebook in order with the active profile and writes
  the executed notebooks and their HTML to ``build/``: the main job, ``make run``.
- ``refresh-notebooks`` re-executes the notebooks in place on the toy set and
  cleans them, which is how the committed outputs are made (``make notebooks``).
"""
import argparse
import os
import sys
import time
from pathlib import Path

from . import config

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def _notebooks():
    return sorted(config.NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))


def clean_notebook(nb):
    """Strip what must not be committed: stderr streams (TensorFlow's C++
    start-up lines reach them however it is silenced), widget state, run
    timestamps, and any kernelspec other than ``python3``."""
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs
                            if not (o.output_type == "stream" and o.name == "stderr")]
    return nb


def key_figure(nb):
    """The last printed line of the cell tagged ``key-figure``, if any."""
    for cell in nb.cells:
        if "key-figure" in cell.metadata.get("tags", []):
            text = "".join(o.get("text", "") for o in cell.get("outputs", [])
                           if o.output_type == "stream" and o.name == "stdout")
            return text.strip().splitlines()[-1] if text.strip() else ""
    return ""


def execute(path, timeout=None):
    """Run one notebook in its own folder and return (notebook, seconds, error)."""
    import nbformat

    os.environ["CATDOG_UNATTENDED"] = "1"  # the kernel inherits it: no progress bars
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    try:
        client.execute()
        error = None
    except CellExecutionError as err:
        error = str(err)
    return nb, time.perf_counter() - start, error


def run_notebooks(out_dir=None):
    """Execute every notebook in order; write ``.ipynb`` and ``.html`` to ``build/``.

    Returns
    -------
    int
        0 when every notebook ran, 1 otherwise (the failing cell is printed).
    """
    import nbformat
    from nbconvert import HTMLExporter

    out_dir = Path(out_dir or config.BUILD_DIR)
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"Profile: {config.PROFILE}   notebooks: {config.display_path(config.NOTEBOOKS_DIR)}"
          f"   output: {config.display_path(out_dir)}")
    rows, failed = [], False
    for path in _notebooks():
        print(f"running {path.name} ...", flush=True)
        nb, seconds, error = execute(path)
        nbformat.write(nb, out_dir / path.name)
        html, _ = HTMLExporter().from_notebook_node(nb)
        (out_dir / path.with_suffix(".html").name).write_text(html)
        if error:
            failed = True
            print(f"FAILED: {path.name}\n{error}", file=sys.stderr)
        rows.append((path.name, seconds, "FAILED" if error else "ok", key_figure(nb)))
    width = max(len(r[0]) for r in rows) if rows else 10
    print(f"\n{'notebook':<{width}}  {'seconds':>8}  status  key figure")
    for name, seconds, status, figure in rows:
        print(f"{name:<{width}}  {seconds:8.1f}  {status:<6}  {figure}")
    return 1 if failed else 0


def refresh_notebooks():
    """Re-execute the notebooks in place, cleaned, for committing."""
    import nbformat

    if config.PROFILE != "smoke":
        print("refresh-notebooks commits outputs made on the toy set: run it with "
              "CATDOG_PROFILE=smoke (make notebooks does).", file=sys.stderr)
        return 2
    status = 0
    for path in _notebooks():
        nb, seconds, error = execute(path)
        if error:
            print(f"FAILED: {path.name}\n{error}", file=sys.stderr)
            status = 1
            continue
        nbformat.write(clean_notebook(nb), path)
        print(f"{path.name}: {seconds:.1f} s")
    return status


def _prepare(args):
    from . import data

    try:
        data.prepare_small_dataset(args.source, args.dest, overwrite=args.overwrite,
                                   allow_leakage=args.allow_leakage)
    except data.DatasetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m catdog_lib", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare-data", help="build the book's train/validation/test split")
    prep.add_argument("--source", help="Kaggle train folder or zip, 'download' or 'toy' "
                      "(default: CATDOG_KAGGLE_TRAIN, then the download, then the toy set)")
    prep.add_argument("--dest", help="output folder (default: data/cats_and_dogs_small[_toy])")
    prep.add_argument("--overwrite", action="store_true",
                      help="replace a different dataset already prepared there")
    prep.add_argument("--allow-leakage", action="store_true",
                      help="continue when the same image sits in two splits")
    run = sub.add_parser("run", help="execute every notebook into build/")
    run.add_argument("--out", help="output folder (default: build/)")
    sub.add_parser("refresh-notebooks", help="re-execute notebooks in place for committing")
    args = parser.parse_args(argv)
    if args.command == "prepare-data":
        return _prepare(args)
    if args.command == "run":
        return run_notebooks(args.out)
    return refresh_notebooks()

