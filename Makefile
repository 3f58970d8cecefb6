# Two commands do everything on a fresh machine with Python 3.11 and git:
#   make repro   - create .venv, install the pinned dependencies, run the default pipeline
#   make test    - same set-up, then lint and the test suite
VENV ?= .venv
# The lock is for Python 3.11: take python3.11 when it exists, whatever python3 is.
# Override with `make PYTHON=/path/to/python3.11`.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || echo python3)
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup repro repro-tiny test lint format bench ci-repro clean lock plots-template

$(VENV)/.installed: pyproject.toml requirements-lock.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null || { \
	  echo "error: $(PYTHON) is not Python 3.11, which the study's lock needs;" \
	       "install it and run: make PYTHON=/path/to/python3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	# torch first and exactly pinned: this pin takes the CPU build; anything looser pulls CUDA.
	$(BIN)/pip install --quiet torch==2.13.0
	# The package declares ranges; the lock pins the study's exact versions.
	$(BIN)/pip install --quiet -c requirements-lock.txt -e ".[study,pipeline,dev]"
	touch $@

setup: $(VENV)/.installed

# The per-model stages run in parallel lanes, one per core, then dvc commit records them;
# `dvc repro` gives the same results one stage at a time (scripts/repro_lanes.py).
repro: setup
	python scripts/repro_lanes.py

# --temp: the tiny run happens in a temporary copy and is kept as a DVC experiment
# (`dvc exp show`); params.yaml, dvc.lock, metrics, figures and the report stay untouched.
# The profile's -S arguments are read first and `&&` stops on a broken profile: inside
# `dvc exp run $$(...)` its failure would be ignored and the full default run would start.
repro-tiny: setup
	args="$$(python -m diffusion_circuits.profiles tiny)" && dvc exp run --temp $$args

lint: setup
	ruff check src stages tests scripts examples
	ruff format --check src stages tests scripts examples

format: setup
	ruff format src stages tests scripts examples
	ruff check --fix src stages tests scripts examples

test: lint
	pytest

ci-repro: setup
	bash scripts/ci_repro.sh

# The peer benchmark (scripts/peer_bench.py, against nnsight) runs when the `bench` extra
# is installed (pip install -e '.[bench]'); without it, a line says so and make goes on.
bench: setup
	python scripts/benchmark.py
	python scripts/benchmark_probe.py --public
	@if python -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("nnsight") is None)'; then \
	  python scripts/peer_bench.py; \
	else \
	  echo "peer benchmark skipped: nnsight is not installed; pip install -e '.[bench]'"; \
	fi

# Rebuild .dvc/plots_template.html (vega libraries inlined, for offline `dvc plots show`);
# needs npm and the npm registry. The built file is committed, so users never need this.
plots-template: setup
	python scripts/build_plots_template.py

# Rewrite the lock from the working environment (after a deliberate upgrade in .venv).
lock: setup
	{ sed -n '/^#/p' requirements-lock.txt; \
	  pip freeze --exclude-editable | sed 's/+cpu$$//'; } > requirements-lock.txt.new
	mv requirements-lock.txt.new requirements-lock.txt

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
