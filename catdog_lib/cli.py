"""Command line: ``python -m catdog_lib prepare-data | run | refresh-notebooks``.

- ``prepare-data`` builds the book's split (see ``data.prepare_small_dataset``).
- ``run`` executes every notebook in order with the active profile and writes
  the executed notebooks and their HTML to ``build/``: the main job, ``make run``.
- ``refresh-notebooks`` re-executes the notebooks in place on the toy set and
  cleans them, which is how the committed outputs are made (``make notebooks``).
- ``badges`` writes the Colab badge and install cell of every notebook, and
  the README's notebook table, from the repository address in
  ``pyproject.toml`` (``--check`` only reports what is out of date).
"""
import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from . import config, startup

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def _notebooks(numbers=()):
    """The numbered notebooks in order; only those whose number is in
    ``numbers`` ("03", "4") when it is given."""
    paths = sorted(config.NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
    if not numbers:
        return paths
    wanted = {int(n) for n in numbers}
    found = [p for p in paths if int(p.name[:2]) in wanted]
    missing = wanted - {int(p.name[:2]) for p in found}
    if missing:
        raise SystemExit(f"no notebook numbered {', '.join(map(str, sorted(missing)))} "
                         f"in {config.display_path(config.NOTEBOOKS_DIR)}")
    return found


def clean_notebook(nb):
    """Strip what must not be committed: stderr streams (TensorFlow's C++
    start-up lines reach them however it is silenced), widget state, run
    timestamps, and any kernelspec other than ``python3``. The stdout
    streams a stripped stderr stream had split are joined again, as
    Jupyter shows them."""
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        outputs = []
        for out in cell.outputs:
            if out.output_type == "stream" and out.name == "stderr":
                continue
            if out.output_type == "stream" and outputs and outputs[-1].output_type == "stream":
                outputs[-1].text += out.text
            else:
                outputs.append(out)
        cell.outputs = outputs
    return nb


def drop_tf_log_lines(nb):
    """Remove TensorFlow's C++ log lines from the stderr outputs, which a
    notebook that imports ``keras`` before ``catdog_lib`` can catch."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.outputs:
            if out.output_type == "stream" and out.name == "stderr":
                out.text = startup.without_tf_log_lines(out.text)
        cell.outputs = [o for o in cell.outputs
                        if not (o.output_type == "stream" and not o.text)]
    return nb


def key_figure(nb):
    """The last printed line of the cell tagged ``key-figure``, if any."""
    for cell in nb.cells:
        if "key-figure" in cell.metadata.get("tags", []):
            text = "".join(o.get("text", "") for o in cell.get("outputs", [])
                           if o.output_type == "stream" and o.name == "stdout")
            return text.strip().splitlines()[-1] if text.strip() else ""
    return ""


def resumed(nb):
    """Whether ``train.run_callbacks`` resumed an earlier run in this notebook, so its
    time is not that of a whole run."""
    return any("Resuming " in o.get("text", "") for cell in nb.cells if cell.cell_type == "code"
               for o in cell.get("outputs", []) if o.output_type == "stream")


class PeakMemory:
    """Track the largest memory of this process's children (the kernel),
    sampled every half second while a notebook runs.

    ``peak_mb`` is resident memory. ``peak_anon_mb`` leaves out the pages
    mapped from files, mostly TensorFlow's shared libraries, which
    the operating system can drop and read again: under a container's limit,
    as on Binder, it reclaims those before it kills anything, so the
    anonymous part is the floor of what must fit.
    """

    def __init__(self):
        import threading

        self.peak_mb = self.peak_anon_mb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        import psutil

        me = psutil.Process()
        while not self._stop.wait(0.5):
            rss = anon = 0
            for child in me.children(recursive=True):
                try:
                    info = child.memory_info()
                except psutil.NoSuchProcess:
                    continue
                rss += info.rss
                anon += info.rss - getattr(info, "shared", 0)  # "shared" is Linux's file-backed part
            self.peak_mb = max(self.peak_mb, rss / 2**20)
            self.peak_anon_mb = max(self.peak_anon_mb, anon / 2**20)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def execute(path, timeout=None, env=None):
    """Run one notebook in its own folder.

    ``env`` adds environment variables for its kernel only.

    Returns
    -------
    (notebook, seconds, PeakMemory of the kernel, error message or None)
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from traitlets.config import Config

    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    # The kernel talks to us over Unix sockets in a private folder, not TCP
    # ports that any user of a shared machine could reach (ipykernel warns
    # about that on every start). Windows has only TCP.
    with tempfile.TemporaryDirectory(prefix="catdog-kernel-") as sockets, PeakMemory() as memory:
        sockets_config = Config()
        if os.name == "posix":
            sockets_config.KernelManager.transport = "ipc"
            sockets_config.KernelManager.ip = os.path.join(sockets, "kernel")
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3", config=sockets_config,
                                resources={"metadata": {"path": str(path.parent)}})
        try:
            # Nobody watches the kernel's output: no progress bars.
            client.execute(env={**os.environ, "CATDOG_UNATTENDED": "1", **(env or {})})
            error = None
        except CellExecutionError as err:
            error = str(err)
    return nb, time.perf_counter() - start, memory, error


def run_notebooks(out_dir=None, numbers=(), record=False):
    """Execute the notebooks in order; write ``.ipynb`` and ``.html`` to ``build/``.

    Parameters
    ----------
    out_dir : path, optional
        Default: ``build/``.
    numbers : list of str, optional
        Run only these notebooks ("03"); default: all of them. The full
        profile of notebook 04 alone takes hours on 2 cores, so it is timed
        on its own.
    record : bool
        Also keep the timings in ``benchmarks/results/notebooks_<cpu tag>.json``, the
        project's committed measurements behind the README's table. Off by
        default, so a student's run leaves the repository's files unchanged.

    Returns
    -------
    int
        0 when every notebook ran, 1 otherwise (the failing cell is printed).
    """
    import nbformat
    from nbconvert import HTMLExporter

    profile = config.profile()["name"]  # a bad CATDOG_PROFILE stops the run before it writes
    out_dir = Path(out_dir or config.BUILD_DIR)
    out_dir.mkdir(parents=True, exist_ok=True)
    print(f"Profile: {profile}   notebooks: {config.display_path(config.NOTEBOOKS_DIR)}"
          f"   output: {config.display_path(out_dir)}")
    rows, failed = [], False
    for path in _notebooks(numbers):
        print(f"running {path.name} ...", flush=True)
        nb, seconds, memory, error = execute(path)
        drop_tf_log_lines(nb)
        nbformat.write(nb, out_dir / path.name)
        html, _ = HTMLExporter().from_notebook_node(nb)
        (out_dir / path.with_suffix(".html").name).write_text(html)
        if error:
            failed = True
            print(f"FAILED: {path.name}\n{error}", file=sys.stderr)
        status = "FAILED" if error else "resumed" if resumed(nb) else "ok"
        rows.append((path.name, seconds, memory, status, key_figure(nb)))
    width = max(len(r[0]) for r in rows) if rows else 10
    print(f"\n{'notebook':<{width}}  {'seconds':>8}  {'peak MB':>8}  {'anon MB':>8}  status   key figure")
    for name, seconds, memory, status, figure in rows:
        print(f"{name:<{width}}  {seconds:8.1f}  {memory.peak_mb:8.0f}  {memory.peak_anon_mb:8.0f}  "
              f"{status:<7}  {figure}")
    if record:
        _record_runtimes(rows, numbers)
    return 1 if failed else 0


def _results_dir():
    return config.PROJECT_ROOT / "benchmarks" / "results"


def _record_runtimes(rows, numbers=()):
    """Keep each notebook's latest timing per profile in this machine's
    benchmarks/results/notebooks_<cpu tag>.json, with the command that measured
    it, so one machine's timings never replace another's."""
    from . import train

    cpu = train.cpu()
    path = _results_dir() / f"notebooks_{cpu['tag']}.json"
    if not path.parent.is_dir() or not rows:
        return
    record = json.loads(path.read_text()) if path.exists() else {}
    profile, kaggle = config.profile()["name"], os.environ.get("CATDOG_KAGGLE_TRAIN")
    command = " ".join([f"CATDOG_PROFILE={profile}"]
                       + [f"CATDOG_KAGGLE_TRAIN={kaggle}"] * bool(kaggle)
                       + ["make run RECORD=1"] + [f"NOTEBOOKS=\"{' '.join(numbers)}\""] * bool(numbers))
    data = _data_line()
    recorded = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    entries = record.setdefault(profile, {})
    for name, seconds, memory, status, figure in rows:
        entries[name] = {"seconds": round(seconds, 1), "peak_kernel_mb": round(memory.peak_mb),
                         "peak_kernel_anon_mb": round(memory.peak_anon_mb), "status": status,
                         "key_figure": figure, "command": command, "data": data,
                         "cpu": cpu, "recorded": recorded}
    path.write_text(json.dumps(record, indent=1) + "\n")


def notebook_timing(profile, name):
    """The newest timing of a whole run of notebook ``name`` under ``profile``.

    Parameters
    ----------
    profile : str
        "quick" or "full".
    name : str
        The notebook's file name, such as "03_baseline_convnet.ipynb".

    Returns
    -------
    dict or None
        The entry ``make run RECORD=1`` wrote (seconds, peak memory, status,
        key figure, command, CPU) with status "ok" (not failed, not resumed),
        taken from every machine's ``benchmarks/results/notebooks_<cpu tag>.json``
        and from the older ``notebooks.json``, whose entries do not record
        their CPU and count as older than any that do; None when no whole run
        was timed.

    Example
    -------
    >>> notebook_timing("quick", "01_convolution_intuition.ipynb")["status"]
    'ok'
    """
    results = _results_dir()
    paths = [results / "notebooks.json", *results.glob("notebooks_*.json")]
    entries = [json.loads(path.read_text()).get(profile, {}).get(name)
               for path in paths if path.exists()]
    entries = [e for e in entries if e and e["status"] == "ok"]
    return max(entries, key=lambda e: e.get("recorded", ""), default=None)


def _data_line():
    from . import data

    try:
        return data.describe()
    except FileNotFoundError:
        return "no prepared data"


def refresh_notebooks():
    """Re-execute the notebooks in place, cleaned, for committing."""
    import nbformat

    if config.profile()["name"] != "smoke":
        print("refresh-notebooks commits outputs made on the toy set: run it with "
              "CATDOG_PROFILE=smoke (make notebooks does).", file=sys.stderr)
        return 2
    status = 0
    # A fresh runs folder, so every notebook trains instead of resuming.
    runs = tempfile.mkdtemp(prefix="catdog-refresh-")
    for path in _notebooks():
        nb, seconds, _, error = execute(path, env={"CATDOG_RUNS_DIR": runs})
        if error:
            print(f"FAILED: {path.name}\n{error}", file=sys.stderr)
            status = 1
            continue
        nbformat.write(clean_notebook(nb), path)
        print(f"{path.name}: {seconds:.1f} s")
    shutil.rmtree(runs)
    return status


COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
BINDER_BADGE = "https://mybinder.org/badge_logo.svg"
INSTALL_CELL = """# On Google Colab, install catdog_lib first (about a minute); elsewhere this does nothing.
try:
    import google.colab  # noqa: F401  (exists only on Colab)
    %pip install -q "catdog @ git+{repo}"
except ImportError:
    pass"""
TABLE_START, TABLE_END = "<!-- notebook-table:start -->", "<!-- notebook-table:end -->"


def repository_url():
    """The ``Repository`` address from ``pyproject.toml``'s ``[project.urls]``."""
    from importlib.metadata import metadata

    urls = dict(u.split(", ", 1) for u in metadata("catdog").get_all("Project-URL"))
    return urls["Repository"].rstrip("/")


def colab_link(repo, name):
    return repo.replace("https://github.com/", "https://colab.research.google.com/github/") + \
        f"/blob/main/notebooks/{name}"


def binder_link(repo):
    return repo.replace("https://github.com/", "https://mybinder.org/v2/gh/") + \
        "/main?urlpath=lab/tree/notebooks"


def _with_badges(nb, name, repo):
    """Put the badge on the first line of the first cell and the install cell
    right after it, replacing older ones."""
    import nbformat

    badge = f"[![Open In Colab]({COLAB_BADGE})]({colab_link(repo, name)})"
    first = nb.cells[0]
    lines = first.source.splitlines()
    if lines and lines[0].startswith("[![Open In Colab]"):
        lines = lines[2:] if len(lines) > 1 and not lines[1].strip() else lines[1:]
    first.source = "\n".join([badge, ""] + lines)
    install = INSTALL_CELL.format(repo=repo)
    second = nb.cells[1] if len(nb.cells) > 1 else None
    if second is not None and second.cell_type == "code" and \
            second.source.startswith(INSTALL_CELL.splitlines()[0]):
        second.source = install
    else:
        nb.cells.insert(1, nbformat.v4.new_code_cell(install))
    return nb


def _readme_table(repo):
    import nbformat

    from . import train

    def measured(profile, name):
        entry = notebook_timing(profile, name)
        if not entry:
            return "not measured"
        anon = entry.get("peak_kernel_anon_mb")
        machine = (train.cpu_label(entry["cpu"]) if "cpu" in entry
                   else f"{entry['cpu_count']} cores, CPU not recorded")
        return (f"{entry['seconds'] / 60:.1f} min, {entry['peak_kernel_mb']:,} MB"
                + (f" ({anon:,} MB anonymous)" if anon else "") + f"; {machine}")

    rows = ["| notebook | what it teaches | `quick`: time, peak memory; CPU "
            "| `full`: time, peak memory; CPU | |", "|---|---|---|---|---|"]
    for path in _notebooks():
        nb = nbformat.read(path, as_version=4)
        title = next(line for line in nb.cells[0].source.splitlines() if line.startswith("# "))
        number, _, topic = title[2:].partition(" · ")
        rows.append(f"| [{number}](notebooks/{path.name}) | {topic} | {measured('quick', path.name)} "
                    f"| {measured('full', path.name)} | [![Open In Colab]({COLAB_BADGE})]"
                    f"({colab_link(repo, path.name)}) |")
    rows += ["", f"[![Binder]({BINDER_BADGE})]({binder_link(repo)}) opens JupyterLab on "
             "`notebooks/` in Binder."]
    return "\n".join(rows)


def update_badges(check=False):
    """Rewrite (or, with ``check``, only compare) the badges, install cells and
    README table. Returns the files that were, or would be, changed."""
    import nbformat

    repo = repository_url()
    stale = []
    for path in _notebooks():
        text = path.read_text()
        new = nbformat.writes(_with_badges(nbformat.reads(text, as_version=4), path.name, repo)) + "\n"
        if new != text:
            stale.append(path)
            if not check:
                path.write_text(new)
    readme = config.PROJECT_ROOT / "README.md"
    text = readme.read_text()
    start, end = text.index(TABLE_START) + len(TABLE_START), text.index(TABLE_END)
    new = text[:start] + "\n" + _readme_table(repo) + "\n" + text[end:]
    if new != text:
        stale.append(readme)
        if not check:
            readme.write_text(new)
    return stale


def _prepare(args):
    from . import data

    try:
        data.prepare_small_dataset(args.source, args.dest, overwrite=args.overwrite,
                                   allow_leakage=args.allow_leakage)
    except (data.DatasetError, config.SettingError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def _notebook_number(text):
    if not re.fullmatch("[0-9]{1,2}", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a notebook number such as 03")
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m catdog_lib", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare-data", help="build the book's train/validation/test split")
    prep.add_argument("--source", help="Kaggle train folder or zip, 'download' or 'toy' "
                      "(default: CATDOG_KAGGLE_TRAIN, then the download, then the toy set)")
    prep.add_argument("--dest", help="output folder (default: data/cats_and_dogs_small[_toy])")
    prep.add_argument("--overwrite", action="store_true",
                      help="replace a different dataset that prepare-data made there "
                      "(never anything else)")
    prep.add_argument("--allow-leakage", action="store_true",
                      help="continue when the same image sits in two splits")
    run = sub.add_parser("run", help="execute the notebooks into build/")
    run.add_argument("numbers", nargs="*", metavar="NUMBER", type=_notebook_number,
                     help="run only these notebooks, such as 03 (default: all)")
    run.add_argument("--out", help="output folder (default: build/)")
    run.add_argument("--record", action="store_true",
                     help="also keep the timings in benchmarks/results/notebooks_<cpu tag>.json")
    sub.add_parser("refresh-notebooks", help="re-execute notebooks in place for committing")
    badges = sub.add_parser("badges", help="write Colab badges, install cells and the README table")
    badges.add_argument("--check", action="store_true", help="only report what is out of date")
    args = parser.parse_args(argv)
    if args.command == "prepare-data":
        return _prepare(args)
    try:
        if args.command == "run":
            return run_notebooks(args.out, args.numbers, args.record)
        if args.command == "badges":
            stale = update_badges(args.check)
            for path in stale:
                print(f"{'out of date' if args.check else 'updated'}: {config.display_path(path)}")
            return 1 if stale and args.check else 0
        return refresh_notebooks()
    except config.SettingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1

