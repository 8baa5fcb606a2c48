"""pytest set-up shared by tests/ and the nbval run over notebooks/.

A test process (each pytest-xdist worker of ``make test``) writes only under
a temporary folder of its own (a worker's lies inside its controller's):
``pytest_configure`` points the data and runs folders there before any
notebook kernel starts (kernels inherit the environment), and sets the
``smoke`` profile, so a bare ``pytest`` runs the tests as ``make test`` does
and leaves the checkout as it was.
"""
import os
import shutil
import signal
import tempfile

import pytest

SESSION_ENV = {}


def _stop(signum, frame):
    raise KeyboardInterrupt(f"stopped by signal {signum}")


def pytest_configure(config):
    # A CI time limit stops the run with SIGTERM, which would end Python with
    # no clean-up; as an interruption, pytest still tears down and unconfigures,
    # so the temporary folder below goes with it.
    config.catdog_saved_sigterm = signal.signal(signal.SIGTERM, _stop)
    # An xdist worker starts with the environment of the process that started it.
    controller_root = os.environ.get("CATDOG_TEST_ROOT") if "PYTEST_XDIST_WORKER" in os.environ else None
    # A worker's folder lies inside its controller's, so the controller's
    # clean-up also removes the folder of a worker killed before its own ran
    # (xdist kills a worker busy in TensorFlow that does not stop in seconds).
    root = tempfile.mkdtemp(prefix="catdog-tests-", dir=controller_root)
    SESSION_ENV.update(CATDOG_PROFILE="smoke", CATDOG_DATA_DIR=os.path.join(root, "data"),
                       CATDOG_RUNS_DIR=os.path.join(root, "runs"), CATDOG_TEST_ROOT=root)
    config.catdog_saved_env = {name: os.environ.get(name) for name in SESSION_ENV}
    os.environ.update(SESSION_ENV)
    # Several workers' notebooks and tests need the toy set, which is slow to
    # draw, so the controller draws it once into its data folder (the only
    # thing it writes there), before the workers start, and each worker links
    # that folder's files into its own: the drawing never changes a file once
    # written, it replaces it whole.
    if getattr(config.option, "numprocesses", None):
        from catdog_lib import toy

        toy.make_toy_set()
    elif controller_root and os.path.isdir(os.path.join(controller_root, "data")):
        shutil.copytree(os.path.join(controller_root, "data"), SESSION_ENV["CATDOG_DATA_DIR"],
                        copy_function=os.link)


def pytest_unconfigure(config):
    shutil.rmtree(SESSION_ENV.get("CATDOG_TEST_ROOT", ""), ignore_errors=True)
    saved = getattr(config, "catdog_saved_sigterm", None)
    if saved is not None:  # None: a handler set outside Python, which cannot be put back
        signal.signal(signal.SIGTERM, saved)
    for name, value in getattr(config, "catdog_saved_env", {}).items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: a bare pytest runs without it
def pytest_xdist_make_scheduler(config, log):
    """make test runs two pytest-xdist workers. Each test file goes whole to
    one worker, so a module fixture (JupyterLab for the browser tests) starts
    once, and the notebooks all go to one worker, in order, as a student runs
    them: 05 looks for the model 04 trained."""
    from xdist.scheduler import LoadScopeScheduling

    class FilesAndNotebooksTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid):
            path = nodeid.split("::")[0]
            return "notebooks" if path.endswith(".ipynb") else path

    return FilesAndNotebooksTogether(config, log)


@pytest.fixture(autouse=True)
def doctest_folders_in_tmp_path(request):
    """The docstrings' examples make folders with ``tempfile.mkdtemp()``, as a
    reader would; run as doctests, those go into the test's own ``tmp_path``."""
    # monkeypatch only here: requested by every test, it would be set up before
    # tests/conftest.py's state check and undo a test's changes after that check.
    if type(request.node).__name__ == "DoctestItem":
        request.getfixturevalue("monkeypatch").setattr(
            tempfile, "tempdir", str(request.getfixturevalue("tmp_path")))


def pytest_collectstart(collector):
    # nbval compares stdout only: TensorFlow's C++ start-up lines reach stderr
    # in some kernels and not others, so stderr is never a regression.
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare = collector.skip_compare + ("stderr",)
