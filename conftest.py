"""pytest set-up shared by tests/ and the nbval run over notebooks/."""


def pytest_collectstart(collector):
    # nbval compares stdout only: TensorFlow's C++ start-up lines reach stderr
    # in some kernels and not others, so stderr is never a regression.
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare = collector.skip_compare + ("stderr",)
