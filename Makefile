# ClassMood's commands for a fresh machine. Each target makes its own virtual environment in .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install -q --disable-pip-version-check

.PHONY: run test install install-test check lint fuzz bench bench-model model model-cm-small-4 clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip

# onnxruntime-web for the student page's on-device analysis (package-lock.json); served from node_modules.
NPM_CI := npm ci --no-audit --no-fund --loglevel=error

install: $(BIN)/python
	$(PIP) -e .
	command -v npm >/dev/null || bash scripts/ensure-services.sh
	$(NPM_CI)

install-test: $(BIN)/python
	$(PIP) -e '.[train,test]'
	bash scripts/ensure-services.sh
	$(NPM_CI)

# The main job on the embedded default: the classroom server on SQLite (./classmood-data); prints how to log in.
run: install
	$(BIN)/classmood serve

# The whole test suite (SQLite, PostgreSQL, onnxruntime, Chromium).
test: lint
	$(BIN)/python -m pytest

# The long fuzzing run (the test suite runs a short one): schemathesis on SQLite and PostgreSQL, every role.
fuzz: install-test
	CLASSMOOD_FUZZ_EXAMPLES=500 CLASSMOOD_FUZZ_SECONDS=300 $(BIN)/python -m pytest -p no:cacheprovider -s tests/server/test_fuzz.py

check: lint

# Lint and types, also run by `make test`: ruff, and mypy --strict on src/ (pyproject's [tool.mypy]).
lint: install-test
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy --strict

# The shipped model, reproduced from FER2013 and its FER+ votes (../shared/data/fer2013) by its recipe files alone
# (recipes/cm-small-5.toml and its variant cm-small-5-cw05.toml; each run resumes after its last epoch): the teacher,
# the two training runs, the choice by the rule on PublicTest, the release step on PublicTest, then PrivateTest once.
# `make model-cm-small-4` retrains cm-small-4, a member of the teacher. Results are in the model card and CHANGELOG.md.
model: install-test
	$(BIN)/classmood teacher --recipe cm-small-5
	$(BIN)/classmood train --recipe cm-small-5
	$(BIN)/classmood train --recipe cm-small-5-cw05
	$(BIN)/classmood choose --recipe cm-small-5
	$(BIN)/classmood export runs/release.pt
	$(BIN)/classmood evaluate --json reports/evaluate-PrivateTest.json

model-cm-small-4: install-test
	$(BIN)/classmood train --recipe cm-small-4

# Model benchmark against the `fer` package, in its own environment (fer's needs are not ClassMood's).
bench-model: $(BIN)/python
	bash bench/setup-bench-env.sh
	.venv-bench/bin/classmood bench model

# Every benchmark, in the benchmark environment (peers included); figures printed and kept under bench/out/.
bench: $(BIN)/python
	bash bench/setup-bench-env.sh
	mkdir -p bench/out
	.venv-bench/bin/classmood bench model --json bench/out/model.json
	.venv-bench/bin/classmood bench pipeline --json bench/out/pipeline.json
	.venv-bench/bin/classmood bench server --json bench/out/server.json
	.venv-bench/bin/classmood bench load --students 50 --seconds 60 --json bench/out/load.json

clean:
	rm -rf $(VENV) .venv-bench .pytest_cache .mypy_cache .ruff_cache
