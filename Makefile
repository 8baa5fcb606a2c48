# The two commands of the README. Both create (or reuse) .venv and install
# into it once; the stamp file makes a second run reinstall nothing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.catdog-installed

.PHONY: run test notebooks badges

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# The main job: prepare the data, then run every notebook into build/
# (or only some: make run NOTEBOOKS="03 04"). RECORD=1 also keeps the
# timings in benchmarks/results/notebooks_<cpu tag>.json, behind the README's table.
run: $(STAMP)
	$(PY) -m catdog_lib prepare-data
	$(PY) -m catdog_lib run $(if $(RECORD),--record) $(NOTEBOOKS)

# Unit tests, doctests, and nbval over every notebook, on the toy set; the
# session writes only to temporary folders (see conftest.py). Two workers:
# much of the suite waits on kernels, servers and single-threaded imports,
# which leaves one process using about one core of two.
test: $(STAMP)
	CATDOG_PROFILE=smoke $(PY) -m pytest -n 2

# Re-execute the notebooks in place on the toy set: the committed outputs.
# The toy set is made first, so 01 (which runs before 02) finds it on a
# fresh clone too and the outputs do not depend on what data/ held before.
notebooks: $(STAMP)
	CATDOG_PROFILE=smoke $(PY) -m catdog_lib prepare-data
	CATDOG_PROFILE=smoke $(PY) -m catdog_lib refresh-notebooks

# Colab badges, install cells and the README's notebook table, from the
# repository address in pyproject.toml.
badges: $(STAMP)
	$(PY) -m catdog_lib badges
