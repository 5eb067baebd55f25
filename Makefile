# ClassMood's commands for a fresh machine. Each target makes its own virtual environment in .venv.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install -q --disable-pip-version-check

.PHONY: run test install install-test check lint fuzz bench bench-model model clean

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

# The shipped model, reproduced from FER2013 and its FER+ votes (../shared/data/fer2013) with one command (each step
# resumes or is quick to redo): both heads from scratch (72 epochs), a teacher of that network and the previous
# release (models/cm-small-3.onnx), a student distilled from it, the choice among the three by the rule on
# PublicTest, the release step on PublicTest, then PrivateTest once.
model: install-test
	$(BIN)/classmood train --out runs/cm-small-4 --resume
	$(BIN)/classmood teacher runs/cm-small-4/best.pt models/cm-small-3.onnx --out runs/cm-small-4/teacher.npy
	$(BIN)/classmood train --out runs/cm-small-4-kd --resume --init runs/cm-small-4/best.pt \
		--teacher runs/cm-small-4/teacher.npy --kd-alpha 0.5 --epochs 10 --lr 0.01 --warmup-epochs 0.5 --seed 1
	$(BIN)/classmood choose models/cm-small-3.onnx runs/cm-small-4/best.pt runs/cm-small-4-kd/best.pt \
		--out runs/release.pt
	$(BIN)/classmood export runs/release.pt
	$(BIN)/classmood evaluate --json reports/evaluate-PrivateTest.json

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
