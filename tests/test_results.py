"""The README's results tables are the committed runs, as the benchmark prints them."""
import json
import subprocess
import sys

import pytest

from conftest import REPO


@pytest.mark.parametrize("family", ["baseline", "augmented"])
def test_readme_results_table_is_what_reproduction_table_prints(family):
    printed = subprocess.run([sys.executable, "benchmarks/reproduction_table.py", family],
                             cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert printed.strip() in (REPO / "README.md").read_text()


@pytest.mark.parametrize("path", sorted((REPO / "benchmarks" / "results").glob("reproduce_*.json")),
                         ids=lambda p: p.name)
def test_each_committed_run_records_the_seed_it_was_run_with(path):
    result = json.loads(path.read_text())
    assert path.stem.endswith(f"_seed{result['seed']}")
    assert result["info"]["seed"] == result["seed"]
