"""Committed notebooks are clean, and the runner reports failures."""
import ast
import contextlib
import inspect
import io
import json
import os
import re
import tempfile
import textwrap
from pathlib import Path

import keras
import nbformat
import pytest

from catdog_lib import cli, config, explain, models, modern, train
from conftest import REPO, tagged_sources

NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
ABSOLUTE_PATH = re.compile(r"(/home/|/root/|/Users/|/work/|/tmp/|[A-Z]:\\\\Users)")


def timings_file(root):
    """Where ``make run RECORD=1`` keeps this machine's timings under ``root``."""
    return root / "benchmarks" / "results" / f"notebooks_{train.cpu()['tag']}.json"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_is_clean(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert "widgets" not in nb.metadata
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        assert cell.execution_count, f"{path.name}: a code cell was not executed"
        for out in cell.outputs:
            assert out.output_type != "error", f"{path.name}: committed with an error"
            assert not (out.output_type == "stream" and out.name == "stderr"), \
                f"{path.name}: stderr output committed: {out.text[:200]}"
            text = out.get("text", "") + str(out.get("data", {}).get("text/plain", ""))
            assert not ABSOLUTE_PATH.search(text), f"{path.name}: absolute path in {text[:200]}"


def test_notebooks_are_numbered_in_order():
    numbers = [int(p.name[:2]) for p in NOTEBOOKS]
    assert numbers == sorted(set(numbers)) and numbers[0] in (1, 2)


def test_clean_notebook_strips_stderr_and_widget_state():
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "venv-xyz"}, "widgets": {"state": {}}}
    cell = nbformat.v4.new_code_cell("print(1)")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n"),
                    nbformat.v4.new_output("stream", name="stderr", text="oneDNN custom operations"),
                    nbformat.v4.new_output("stream", name="stdout", text="2\n")]
    cell.metadata["execution"] = {"iopub.status.busy": "2026-01-01"}
    nb.cells.append(cell)
    cli.clean_notebook(nb)
    assert nb.metadata == {"kernelspec": cli.KERNELSPEC, "language_info": {"name": "python"}}
    assert [(o.name, o.text) for o in nb.cells[0].outputs] == [("stdout", "1\n2\n")]
    assert "execution" not in nb.cells[0].metadata


def test_run_writes_build_and_fails_loudly(tmp_path, monkeypatch, capsys):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    good = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('accuracy 0.75')")])
    good.cells[0].metadata["tags"] = ["key-figure"]
    bad = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"),
                                          nbformat.v4.new_code_cell("1 / 0  # the failing cell")])
    nbformat.write(good, notebooks / "01_good.ipynb")
    nbformat.write(bad, notebooks / "02_bad.ipynb")
    monkeypatch.setattr(config, "NOTEBOOKS_DIR", notebooks)
    monkeypatch.setattr(config, "PROJECT_ROOT", tmp_path)  # runtimes are recorded there
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    assert cli.run_notebooks(tmp_path / "build") == 1
    out, err = capsys.readouterr()
    assert re.search(r"01_good\.ipynb\s+[\d.]+\s+\d+\s+\d+\s+ok\s+accuracy 0.75", out)
    assert re.search(r"02_bad\.ipynb\s+[\d.]+\s+\d+\s+\d+\s+FAILED", out)
    assert "the failing cell" in err and "ZeroDivisionError" in err
    assert sorted(p.name for p in (tmp_path / "build").iterdir()) == [
        "01_good.html", "01_good.ipynb", "02_bad.html", "02_bad.ipynb"]
    # A student's run changes no committed file; only record=True keeps the timings.
    assert list((tmp_path / "benchmarks" / "results").iterdir()) == []
    cli.run_notebooks(tmp_path / "build", record=True)
    record = json.loads(timings_file(tmp_path).read_text())
    timing = record[config.profile()["name"]]["01_good.ipynb"]
    assert timing["status"] == "ok" and timing["seconds"] > 0 and timing["peak_kernel_mb"] > 20
    assert timing["cpu"] == train.cpu()
    # The kernel maps Python's and NumPy's libraries from files, so its
    # anonymous memory is a real part of its resident memory, not all of it.
    assert 10 < timing["peak_kernel_anon_mb"] < timing["peak_kernel_mb"]


def test_run_marks_a_resumed_training_as_not_a_whole_run(tmp_path, monkeypatch, capsys):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "print('Resuming 03_baseline-quick after epoch 2 of 3')")])
    nbformat.write(nb, notebooks / "03_resumed.ipynb")
    monkeypatch.setattr(config, "NOTEBOOKS_DIR", notebooks)
    monkeypatch.setattr(config, "PROJECT_ROOT", tmp_path)
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    assert cli.run_notebooks(tmp_path / "build", record=True) == 0
    assert re.search(r"03_resumed\.ipynb\s+[\d.]+\s+\d+\s+\d+\s+resumed", capsys.readouterr().out)
    record = json.loads(timings_file(tmp_path).read_text())
    assert record[config.profile()["name"]]["03_resumed.ipynb"]["status"] == "resumed"


def test_run_can_time_one_notebook_and_keeps_the_others_timings(tmp_path, monkeypatch, capsys):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    for name in ("01_first", "02_second"):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(f"print('{name}')")])
        nbformat.write(nb, notebooks / f"{name}.ipynb")
    monkeypatch.setattr(config, "NOTEBOOKS_DIR", notebooks)
    monkeypatch.setattr(config, "PROJECT_ROOT", tmp_path)
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    record = timings_file(tmp_path)
    assert cli.run_notebooks(tmp_path / "build", record=True) == 0
    first = json.loads(record.read_text())[config.profile()["name"]]["01_first.ipynb"]
    assert cli.run_notebooks(tmp_path / "build", ["2"], record=True) == 0
    assert "02_second" in capsys.readouterr().out
    timings = json.loads(record.read_text())[config.profile()["name"]]
    assert timings["01_first.ipynb"] == first  # kept from the whole run
    assert timings["02_second.ipynb"]["command"].endswith('make run RECORD=1 NOTEBOOKS="2"')
    assert first["command"].endswith("make run RECORD=1")
    with pytest.raises(SystemExit, match="no notebook numbered 7 in notebooks"):
        cli.run_notebooks(tmp_path / "build", ["02", "07"])


def test_timings_of_another_machine_are_kept_and_the_newest_is_shown(tmp_path, monkeypatch):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    cells = [nbformat.v4.new_markdown_cell("# 01 · One"), nbformat.v4.new_code_cell("print(1)")]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), notebooks / "01_one.ipynb")
    monkeypatch.setattr(config, "NOTEBOOKS_DIR", notebooks)
    monkeypatch.setattr(config, "PROJECT_ROOT", tmp_path)
    results = tmp_path / "benchmarks" / "results"
    results.mkdir(parents=True)
    profile = config.profile()["name"]
    older = {"seconds": 60.0, "peak_kernel_mb": 700, "status": "ok", "cpu_count": 2}
    elsewhere = {**older, "seconds": 120.0, "recorded": "2000-01-01T00:00:00Z",
                 "cpu": {"model": "Other CPU", "flags": ["avx512_bf16"], "count": 4,
                         "tag": "other-cpu-avx512_bf16-4cpu"}}
    (results / "notebooks.json").write_text(json.dumps({profile: {"01_one.ipynb": older}}))
    # The README's table shows the quick and full profiles; the tests run smoke.
    theirs = {profile: {"01_one.ipynb": elsewhere}, "quick": {"01_one.ipynb": elsewhere}}
    (results / f"notebooks_{elsewhere['cpu']['tag']}.json").write_text(json.dumps(theirs))
    assert cli.notebook_timing(profile, "01_one.ipynb") == elsewhere  # the one with a date
    assert cli.notebook_timing(profile, "02_never.ipynb") is None
    assert "| 2.0 min, 700 MB; Other CPU (avx512_bf16; 4 cores) |" in cli._readme_table(
        "https://github.com/someone/catdog")
    assert cli.run_notebooks(tmp_path / "build", record=True) == 0
    mine = cli.notebook_timing(profile, "01_one.ipynb")
    assert mine["cpu"] == train.cpu() and mine["recorded"] > elsewhere["recorded"]
    # A failed run is recorded as such; the table falls back to the newest whole run.
    nbformat.write(nbformat.v4.new_notebook(cells=[cells[0], nbformat.v4.new_code_cell("1 / 0")]),
                   notebooks / "01_one.ipynb")
    assert cli.run_notebooks(tmp_path / "build", record=True) == 1
    assert json.loads(timings_file(tmp_path).read_text())[profile]["01_one.ipynb"]["status"] == "FAILED"
    assert cli.notebook_timing(profile, "01_one.ipynb") == elsewhere
    # Both older files are as they were.
    assert json.loads((results / "notebooks.json").read_text())[profile]["01_one.ipynb"] == older
    assert json.loads((results / f"notebooks_{elsewhere['cpu']['tag']}.json").read_text()) == theirs


def test_prepare_data_command_reports_bad_source(tmp_path, capsys):
    assert cli.main(["prepare-data", "--source", str(tmp_path / "nowhere")]) == 1
    assert "no such folder" in capsys.readouterr().err


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_cells_stay_short(path):
    for cell in nbformat.read(path, as_version=4).cells:
        # A function that is the lesson (notebook 05's) is shown whole.
        lesson = any(tag.startswith("lesson-") for tag in cell.metadata.get("tags", []))
        if cell.cell_type == "code":
            assert len(cell.source.splitlines()) <= (30 if lesson else 15), cell.source


@pytest.mark.parametrize("name", ["04_augmentation_and_dropout.ipynb", "06_a_modern_convnet.ipynb"])
def test_micro_batches_that_do_not_split_32_stop_the_notebook_by_name(name, tmp_path):
    """As papermill would, a cell below the parameters sets MICRO_BATCHES = 3: the
    next cell stops with the setting's name, before any data or training."""
    nb = nbformat.read(REPO / "notebooks" / name, as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    code_after = [c for c in nb.cells[at + 1:] if c.cell_type == "code"]
    nb.cells = [*nb.cells[:at + 1], nbformat.v4.new_code_cell("MICRO_BATCHES = 3"), code_after[0]]
    nbformat.write(nb, tmp_path / name)
    _, _, _, error = cli.execute(tmp_path / name)
    assert "MICRO_BATCHES = 3 does not split an update's 32 photos" in error
    assert "1, 2, 4, 8, 16, 32" in error


@pytest.mark.parametrize("name", ["03_baseline_convnet.ipynb", "04_augmentation_and_dropout.ipynb",
                                  "06_a_modern_convnet.ipynb"])
def test_training_notebooks_have_a_parameters_cell_near_the_top(name):
    cells = [c for c in nbformat.read(REPO / "notebooks" / name, as_version=4).cells
             if c.cell_type == "code"]
    tagged = [i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", [])]
    # After the Colab install cell and the imports.
    assert tagged and tagged[0] <= 2 and "EPOCHS =" in cells[tagged[0]].source
    # papermill writes its values in a new cell below this one, so anything
    # worked out or printed here would keep the defaults.
    lines = [line.split("#")[0].strip() for line in cells[tagged[0]].source.splitlines()]
    assignments = [(line, *line.partition(" = ")[::2]) for line in lines if line]
    names = {name for _, name, _ in assignments}
    for line, name, value in assignments:
        assert name.isidentifier() and value, f"not a plain assignment: {line!r}"
        assert not set(re.findall(r"(?<![\w.])\w+", value)) & names, f"uses another parameter: {line!r}"


def test_badges_install_cells_and_the_readme_table_are_up_to_date():
    # The table's times come from the committed benchmarks/results/notebooks*.json
    # (cli.notebook_timing): after `make run RECORD=1`, `make badges` writes
    # them into the README.
    assert cli.update_badges(check=True) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_opens_in_colab_and_installs_there(path):
    nb = nbformat.read(path, as_version=4)
    repo = cli.repository_url()
    assert nb.cells[0].source.startswith(f"[![Open In Colab]({cli.COLAB_BADGE})]"
                                         f"({cli.colab_link(repo, path.name)})")
    install = nb.cells[1]
    assert install.cell_type == "code" and "import google.colab" in install.source
    assert f'%pip install -q "catdog @ git+{repo}"' in install.source
    readme = (REPO / "README.md").read_text()
    assert cli.colab_link(repo, path.name) in readme and cli.binder_link(repo) in readme


def test_colab_links_follow_the_repository_address():
    repo = "https://github.com/someone/catdog"
    assert cli.colab_link(repo, "01_x.ipynb") == \
        "https://colab.research.google.com/github/someone/catdog/blob/main/notebooks/01_x.ipynb"
    assert cli.binder_link(repo) == \
        "https://mybinder.org/v2/gh/someone/catdog/main?urlpath=lab/tree/notebooks"


def test_relative_paths_start_at_the_project_root_inside_the_kernel(tmp_path, monkeypatch):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    cell = nbformat.v4.new_code_cell("from catdog_lib import config; print(config.data_dir())\n"
                                     "import os; print(os.environ['CATDOG_UNATTENDED'])")
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), notebooks / "01_env.ipynb")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CATDOG_DATA_DIR", "elsewhere/data")
    nb, _, _, error = cli.execute(notebooks / "01_env.ipynb")
    assert error is None
    assert nb.cells[0].outputs[0].text.split() == [str(REPO / "elsewhere" / "data"), "1"]
    assert "CATDOG_UNATTENDED" not in os.environ  # set for the kernel only


@pytest.mark.skipif(os.name != "posix", reason="Unix sockets")
def test_the_kernel_talks_over_private_sockets_and_says_nothing(tmp_path, capfd):
    cell = nbformat.v4.new_code_cell("import os; print(os.getpid())")
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), tmp_path / "01_quiet.ipynb")
    before = set(Path(tempfile.gettempdir()).glob("catdog-kernel-*"))
    nb, _, memory, error = cli.execute(tmp_path / "01_quiet.ipynb")
    assert error is None and memory.peak_mb > 20
    kernel = int(nb.cells[0].outputs[0].text)
    assert kernel != os.getpid()
    with pytest.raises(ProcessLookupError):
        os.kill(kernel, 0)  # shut down and reaped, not left to notice its parent is gone
    # ipykernel warns on stderr about every kernel it starts on TCP.
    assert "without encryption" not in capfd.readouterr().err
    assert set(Path(tempfile.gettempdir()).glob("catdog-kernel-*")) == before  # sockets removed


def layer_facts(layer):
    """What a layer is, apart from its automatic name."""
    config = {k: v for k, v in layer.get_config().items() if k != "name"}
    return type(layer).__name__, tuple(layer.output.shape), layer.count_params(), config


@pytest.mark.parametrize("name, package_model", [
    ("03_baseline_convnet.ipynb", lambda: models.baseline_convnet(precision="float32")),
    ("04_augmentation_and_dropout.ipynb",
     lambda: models.dropout_convnet(micro_batches=config.MICRO_BATCHES, precision="float32")),
])
def test_the_notebooks_network_is_the_packages(name, package_model):
    # The benchmarks train catdog_lib.models' networks and the notebooks show
    # their own: this keeps the two the same network, compiled the same way.
    source = "\n".join(tagged_sources(name, "book-network", "book-compile"))
    namespace = {"keras": keras, "layers": keras.layers, "models": models,
                 "PRECISION": "float32", "MICRO_BATCHES": config.MICRO_BATCHES}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(source, namespace)
    notebook, package = namespace["model"], package_model()
    assert notebook.count_params() == package.count_params() == 3_453_121
    assert notebook.name == package.name
    assert [layer_facts(layer) for layer in notebook.layers] == \
        [layer_facts(layer) for layer in package.layers]
    compiled = [m.get_compile_config() for m in (notebook, package)]
    for c in compiled:
        del c["optimizer"]["config"]["name"]  # automatic, like the layers'
    assert compiled[0] == compiled[1]


def test_notebook_06_network_is_the_recipe_row():
    # benchmarks/modern_convnet.py trains catdog_lib.modern's rows; notebook
    # 06 writes its network out. This keeps the two the same, compiled alike.
    source = "\n".join(tagged_sources("06_a_modern_convnet.ipynb", "modern-network",
                                       "modern-compile"))
    namespace = {"keras": keras, "layers": keras.layers, "models": models,
                 "PRECISION": "float32", "EPOCHS": 7, "STEPS_PER_EPOCH": 63,
                 "MICRO_BATCHES": config.MICRO_BATCHES}
    exec(source, namespace)
    notebook = namespace["model"]
    package = modern.ablation_convnet(modern.RECIPE, decay_steps=7 * 63,
                                      micro_batches=config.MICRO_BATCHES, precision="float32")
    assert notebook.name == package.name == "modern_convnet"
    assert [layer_facts(layer) for layer in notebook.layers] == \
        [layer_facts(layer) for layer in package.layers]
    compiled = [m.get_compile_config() for m in (notebook, package)]
    for c in compiled:
        del c["optimizer"]["config"]["name"]
    assert compiled[0] == compiled[1]


def _without_docstring(function_source):
    """A function's AST, dumped, without its docstring (comments are not in it)."""
    function = ast.parse(textwrap.dedent(function_source)).body[0]
    body = function.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        function.body = body[1:]
    return ast.dump(function)


@pytest.mark.parametrize("tag, function", [
    ("lesson-activations", explain.activations),
    ("lesson-filter-patterns", explain.filter_patterns),
    ("lesson-gradcam", explain.gradcam),
])
def test_notebook_05_teaches_the_tested_code(tag, function):
    # The notebook shows these functions in full; tests/test_explain.py checks
    # catdog_lib.explain's. This keeps the two the same code, docstrings aside.
    tagged = tagged_sources("05_what_the_convnet_learned.ipynb", tag)
    assert len(tagged) == 1
    assert _without_docstring(tagged[0]) == _without_docstring(inspect.getsource(function))
