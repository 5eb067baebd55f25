# ClassMood's commands for a fresh machine. Each target makes its own virtual environment in .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install -q --disable-pip-version-check

.PHONY: run test install install-test check bench-model clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip

install: $(BIN)/python
	$(PIP) -e .

install-test: $(BIN)/python
	$(PIP) -e '.[train,test]'
	bash scripts/ensure-services.sh

# The main job on the embedded default.
run: install
	$(BIN)/classmood evaluate

# The whole test suite (SQLite, PostgreSQL, onnxruntime, Chromium).
test: install-test
	$(BIN)/python -m pytest

check: install-test
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

# Model benchmark against the `fer` package, in its own environment (fer's needs are not ClassMood's).
bench-model: $(BIN)/python
	bash bench/setup-bench-env.sh
	.venv-bench/bin/classmood bench model

clean:
	rm -rf $(VENV) .venv-bench .pytest_cache .mypy_cache .ruff_cache
