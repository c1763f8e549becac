# The README's two commands: `make run` (the pipeline's quick-start) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: setup run test bench clean

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

clean:
	rm -rf $(VENV) pipeline_root saved_models/*/ .pytest_cache
