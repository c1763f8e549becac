# The README's two commands: `make run` (the pipeline's quick-start) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: setup run test bench bench-art clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,eval]"
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(PY) pipeline/run.py

test: setup
	$(PY) -m pytest

bench: setup
	$(PY) bench/train_step.py

bench-art: setup
	$(PY) bench/art_crosscheck.py

clean:
	rm -rf $(VENV) pipeline_root saved_models/*/ .pytest_cache
