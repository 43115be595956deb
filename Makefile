# make install: set up .venv: requirements.txt and this project (editable).
# make demo: set up .venv and run the whole workflow on the demo data.  make test: set up .venv, run the tests.
# make test-fast: the unit tests alone (no workflow, Slurm, several-process or model-family run), for development.
# make docs: build the documentation site into site/ in strict mode (mkdocs serve: a live preview).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
CORES ?= all
UV := uv==0.13.9
# pytest-xdist workers; tests that share a workflow run stay on one worker (tests/conftest.py)
TEST_WORKERS ?= 2
PYTEST := $(BIN)/pytest -n $(TEST_WORKERS)

.PHONY: install demo test test-fast docs lint clean

# pip installs torch, so that pip's own settings (an index or a folder of wheels) choose the build for this machine;
# uv installs the rest (it keeps that torch: its version is the pinned one) in a fraction of pip's time. uv reads
# none of pip's settings: where it cannot reach its index (a package mirror set up for pip only), pip installs the
# rest. Both compile the bytecode now: the jobs import torch and transformers, slowly, in every process.
$(INSTALLED): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --no-deps $$(grep '^torch==' requirements.txt) $(UV)
	$(BIN)/uv pip install --quiet --python $(BIN)/python --compile-bytecode -r requirements.txt -e . \
		|| { echo "make: uv could not install requirements.txt (above); installing it with pip" >&2; \
		     $(BIN)/pip install --quiet -r requirements.txt -e .; }
	touch $@

install: $(INSTALLED)

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
