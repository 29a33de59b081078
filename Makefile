# The two commands: `make run` starts everything on this machine, `make test` checks everything.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-faults lint migrate clean lock

LOCKS := requirements/build.lock requirements/dev.lock requirements/nodeps.lock
# Exactly the versions in the hash-pinned locks, nothing resolved at install time: the build tools
# first, then everything else built without build isolation (so no unpinned tool is fetched).
PIP_LOCKED := $(PY) -m pip install --quiet --require-hashes --no-deps

$(STAMP): $(LOCKS) pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed (set PYTHON=python3.11)")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP_LOCKED) -r requirements/build.lock
	@echo "Installing (the first time llama-cpp-python compiles: a few minutes)..."
	$(PIP_LOCKED) --no-build-isolation -r requirements/dev.lock -r requirements/nodeps.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@echo "Building the embedding model for ONNX Runtime (once per machine)..."
	$(PY) -m shared.knowledge.mpnet
	touch $(STAMP)

# Re-resolve the locks (needs uv and the network); commit the result with what it changes.
UV ?= uv
LOCK_FLAGS := --universal --python-version 3.11 --generate-hashes --no-header --custom-compile-command "make lock"
lock:
	$(UV) pip compile pyproject.toml requirements/build.in --all-extras $(LOCK_FLAGS) -o requirements/dev.lock
	$(UV) pip compile requirements/build.in -c requirements/dev.lock $(LOCK_FLAGS) -o requirements/build.lock
	$(UV) pip compile pyproject.toml requirements/build.in --extra postgres --extra local -c requirements/dev.lock $(LOCK_FLAGS) -o requirements/worker.lock
	$(UV) pip compile pyproject.toml --extra postgres -c requirements/dev.lock $(LOCK_FLAGS) -o requirements/api.lock
	$(UV) pip compile requirements/nodeps.in --no-deps $(LOCK_FLAGS) -o requirements/nodeps.lock

run: $(STAMP)
	$(PY) -m shared.cli.launcher

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
