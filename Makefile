# The README's two commands: `make run` (the pipeline's quick-start) and `make test`
# (`make test-fast` while working: CONTRIBUTING.md).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
BENCH_STAMP := $(VENV)/.bench-stamp

.PHONY: setup run test test-fast lint format bench bench-quick bench-art clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,eval]"
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(PY) pipeline/run.py

# One pytest-xdist worker per core, whole modules per worker (module fixtures are built once).
PYTEST_WORKERS ?= 2
PYTEST_PARALLEL := -n $(PYTEST_WORKERS) --dist loadfile

test: setup lint
	$(PY) -m pytest $(PYTEST_PARALLEL)

# Everything but the long end-to-end runs (@pytest.mark.slow); `make test` runs them too.
test-fast: setup lint
	$(PY) -m pytest $(PYTEST_PARALLEL) -m "not slow"

# The formatter and linter (configured in pyproject.toml); `make format` applies both.
lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: setup
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[test,eval,bench]"
	touch $(BENCH_STAMP)

# Every benchmark at its full size (hours on 2 cores: attacks_vs_torch and art_crosscheck
# dominate); `make bench-quick` runs each as a smoke test (BENCH_FLAGS=--quick).
bench: $(BENCH_STAMP)
	$(PY) bench/train_step.py $(BENCH_FLAGS)
	$(PY) bench/step_parts.py $(BENCH_FLAGS)
	$(PY) bench/memory.py $(BENCH_FLAGS)
	$(PY) bench/estimator_width.py $(BENCH_FLAGS)
	$(PY) bench/attacks_vs_torch.py $(BENCH_FLAGS)
	$(PY) bench/art_crosscheck.py $(BENCH_FLAGS)

bench-quick:
	$(MAKE) bench BENCH_FLAGS=--quick

bench-art: setup
	$(PY) bench/art_crosscheck.py

clean:
	rm -rf $(VENV) pipeline_root saved_models/*/ .pytest_cache
