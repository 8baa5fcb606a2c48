"""Install files agree with each other, CI runs the README's command, and
the tests leave the checkout as they found it."""
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import yaml

from catdog_lib import trained
from conftest import REPO


def name_of(requirement):
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_names_exactly_the_pyproject_dependencies():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "python=3.11" in conda and "pip" in conda
    assert "-e ." in pip
    listed = {name_of(d) for d in conda if not d.startswith(("python=", "pip"))}
    listed |= {name_of(d) for d in pip if d != "-e ."}
    assert listed == {name_of(d) for d in project["dependencies"]}


def test_dependencies_are_ranges_not_pins():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + project["optional-dependencies"]["dev"]
    assert "nbval" in {name_of(r) for r in project["optional-dependencies"]["dev"]}
    for requirement in requirements:
        assert ">=" in requirement and "==" not in requirement, requirement
    assert project["requires-python"] == ">=3.10"


def test_ci_runs_the_readme_test_command():
    script = (REPO / ".ci" / "run").read_text()
    assert "make test" in script
    readme = (REPO / "README.md").read_text()
    assert "make run" in readme and "make test" in readme


def checkout_state():
    """``git status`` with ignored files too, less caches and the venv."""
    out = subprocess.run(["git", "status", "--porcelain", "--ignored"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout.splitlines()
    return sorted(line for line in out if "__pycache__" not in line and ".venv" not in line)


@pytest.mark.skipif(not (REPO / ".git").exists(), reason="not a git checkout")
def test_a_bare_pytest_writes_nothing_into_the_checkout():
    before = checkout_state()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATDOG_")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/test_train.py::test_a_finished_run_is_restored_not_retrained",
         "notebooks/02_dataset_splitting.ipynb"],  # prepares data/ unless redirected
        cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:]
    assert checkout_state() == before


def test_the_docstring_examples_leave_no_folder_in_the_temporary_folder(tmp_path):
    # The examples make folders with tempfile.mkdtemp(), as a reader would.
    # (TensorFlow's autograph leaves files of its own there, which this does not count.)
    system = tmp_path / "system"
    system.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CATDOG_")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "--basetemp", str(tmp_path / "pytest"), "catdog_lib/toy.py", "catdog_lib/data.py"],
        cwd=REPO, env={**env, "TMPDIR": str(system)}, capture_output=True, text=True)
    assert result.returncode == 0 and " passed" in result.stdout, result.stdout[-2000:]
    assert [p.name for p in system.iterdir() if p.is_dir()] == []


@pytest.mark.skipif(not (REPO / ".git").exists(), reason="not a git checkout")
def test_the_wheel_carries_the_shipped_model_and_the_reference_runs(tmp_path):
    # Built from a copy of the committed files, so the checkout gets no build/.
    src = tmp_path / "src"
    for name in subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                               check=True).stdout.splitlines():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps",
                    "--quiet", str(src), "-w", str(tmp_path / "wheel")],
                   check=True, capture_output=True)
    (wheel,) = (tmp_path / "wheel").glob("catdog-*.whl")
    inside = set(zipfile.ZipFile(wheel).namelist())
    shipped = {f"catdog_lib/reference/{name}" for name in
               (trained.WEIGHTS.name, trained.CARD.name, trained.CARD_MARKDOWN.name,
                "augmented.json", "baseline.json")}
    assert shipped <= inside, shipped - inside


@pytest.mark.parametrize("worker", [False, True], ids=["bare", "xdist worker"])
def test_a_pytest_stopped_by_sigterm_removes_its_temporary_folder(tmp_path, worker):
    # As a CI time limit stops it: the repository's conftest.py as a plugin,
    # over a test that waits to be stopped; as make test's worker, its folder
    # lies inside its controller's, which the controller removes in turn.
    (tmp_path / "test_wait.py").write_text(
        "import os, time\n"
        "def test_wait():\n"
        "    with open('started.part', 'w') as f:\n"
        "        f.write(os.environ['CATDOG_TEST_ROOT'])\n"
        "    os.replace('started.part', 'started')\n"
        "    time.sleep(120)\n")
    (tmp_path / "tmp").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CATDOG_", "PYTEST_"))}
    env.update(TMPDIR=str(tmp_path / "tmp"), PYTHONPATH=str(REPO))
    controller = tmp_path / "tmp" / "controller"
    if worker:
        (controller / "data").mkdir(parents=True)
        env.update(PYTEST_XDIST_WORKER="gw0", CATDOG_TEST_ROOT=str(controller))
    started = tmp_path / "started"
    with subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "conftest",
             "--rootdir", str(tmp_path), "test_wait.py"],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True) as child:
        try:
            deadline = time.monotonic() + 120
            while not started.exists() and child.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            child.terminate()
            out, _ = child.communicate(timeout=60)
        finally:
            child.kill()  # if it did not stop: the with block then waits for it
    assert started.exists(), out
    assert "stopped by signal 15" in out, out
    root = started.read_text()
    assert Path(root).parent == (controller if worker else tmp_path / "tmp")
    assert not os.path.exists(root)
    assert list((tmp_path / "tmp").iterdir()) == ([controller] if worker else [])
