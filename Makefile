# Two commands do everything on a fresh machine with Python 3.11 and git:
#   make repro   - create .venv, install the pinned dependencies, run the default pipeline
#   make test    - same set-up, then lint and the test suite
VENV ?= .venv
PYTHON ?= python3
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup repro repro-tiny test lint format bench ci-repro clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first and exactly pinned: this pin takes the CPU build; anything looser pulls CUDA.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

repro: setup
	dvc repro

repro-tiny: setup
	dvc exp run $$(python -m diffusion_circuits.profiles tiny)

lint: setup
	ruff check src stages tests scripts
	ruff format --check src stages tests scripts

format: setup
	ruff format src stages tests scripts
	ruff check --fix src stages tests scripts

test: lint
	pytest

ci-repro: setup
	bash scripts/ci_repro.sh

bench: setup
	python scripts/benchmark.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
