"""pytest set-up shared by tests/ and the nbval run over notebooks/.

A test session writes only under one temporary folder: ``pytest_configure``
points the data and runs folders there before any notebook kernel starts
(kernels inherit the environment), and sets the ``smoke`` profile, so a bare
``pytest`` behaves exactly like ``make test`` and leaves the checkout as it was.
"""
import os
import shutil
import tempfile

SESSION_ENV = {}


def pytest_configure(config):
    root = tempfile.mkdtemp(prefix="catdog-tests-")
    SESSION_ENV.update(CATDOG_PROFILE="smoke", CATDOG_DATA_DIR=os.path.join(root, "data"),
                       CATDOG_RUNS_DIR=os.path.join(root, "runs"), CATDOG_TEST_ROOT=root)
    config.catdog_saved_env = {name: os.environ.get(name) for name in SESSION_ENV}
    os.environ.update(SESSION_ENV)


def pytest_unconfigure(config):
    shutil.rmtree(SESSION_ENV.get("CATDOG_TEST_ROOT", ""), ignore_errors=True)
    for name, value in getattr(config, "catdog_saved_env", {}).items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def pytest_collectstart(collector):
    # nbval compares stdout only: TensorFlow's C++ start-up lines reach stderr
    # in some kernels and not others, so stderr is never a regression.
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare = collector.skip_compare + ("stderr",)
