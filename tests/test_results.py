"""The README's results tables are the committed runs, as the benchmark prints them."""
import subprocess
import sys

import pytest

from conftest import REPO


@pytest.mark.parametrize("family", ["baseline", "augmented"])
def test_readme_results_table_is_what_reproduction_table_prints(family):
    printed = subprocess.run([sys.executable, "benchmarks/reproduction_table.py", family],
                             cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert printed.strip() in (REPO / "README.md").read_text()
