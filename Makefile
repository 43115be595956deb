# make demo: set up .venv and run the whole workflow on the demo data.  make test: set up .venv, run the tests.
# make test-fast: the unit tests alone (no workflow, Slurm, several-process or model-family run), for development.
# make docs: build the documentation site into site/ in strict mode (mkdocs serve: a live preview).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
CORES ?= all
# pytest-xdist workers; tests that share a workflow run stay on one worker (tests/conftest.py)
TEST_WORKERS ?= 2
PYTEST := $(BIN)/pytest -n $(TEST_WORKERS)

.PHONY: demo test test-fast docs lint clean

$(INSTALLED): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

demo: $(INSTALLED)
	$(BIN)/snakemake --cores $(CORES)
	@echo "Report: results/demo/report/report.html"

test: $(INSTALLED)
	$(PYTEST)

test-fast: $(INSTALLED)
	$(PYTEST) -m "not workflow"

docs: $(INSTALLED)
	$(BIN)/mkdocs build --strict

lint: $(INSTALLED)
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check .

clean:
	rm -rf results/demo .snakemake
