"""Adapter from frames to face scores: the vision pipeline if present, else detector + classifier.

Analysis runs in a bounded thread pool (onnxruntime releases the GIL), so the event loop keeps
serving other students and dashboards while frames are analysed. Frames stay in memory.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from classmood.labels import LABELS
from classmood.server.errors import BadRequest

log = logging.getLogger(__name__)
CROP_MARGIN = 1.15  # square crop side relative to the detected box (fallback path only)


@dataclass(frozen=True)
class FaceScore:
    """One face in a frame: its box (x, y, w, h) in pixels, detection score and seven probabilities."""

    box: tuple[float, float, float, float]
    score: float
    probs: tuple[float, ...]

    @property
    def label_index(self) -> int:
        """Index of the most likely emotion in LABELS."""
        return int(np.argmax(self.probs))

    @property
    def label(self) -> str:
        """The most likely emotion."""
        return LABELS[self.label_index]

    def probs_dict(self) -> dict[str, float]:
        """Probabilities by emotion name."""
        return dict(zip(LABELS, self.probs, strict=True))


def decode_frame(data: bytes) -> npt.NDArray[np.uint8]:
    """Decode JPEG/PNG bytes to a BGR image (400 when the data is not decodable)."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise BadRequest("the image could not be decoded")
    return np.asarray(image, np.uint8)


def _square_crop(grey: npt.NDArray[np.uint8], box: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    side = max(x2 - x1, y2 - y1) * CROP_MARGIN
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    h, w = grey.shape
    left, top = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    right, bottom = int(min(w, cx + side / 2)), int(min(h, cy + side / 2))
    return grey[top:bottom, left:right]


class _FallbackAnalyzer:
    """CenterFace detection, a square crop around each face, the ONNX classifier."""

    def __init__(self, max_side: int) -> None:
        from classmood.vision.classifier import EmotionClassifier
        from classmood.vision.detector import CenterFaceDetector

        self._detector = CenterFaceDetector(max_side=max_side, threads=1)
        try:
            self._classifier = EmotionClassifier(threads=1)
        except FileNotFoundError:  # a build without the default (quantised) file: use the exported model
            import classmood.vision.classifier as module

            self._classifier = EmotionClassifier(Path(module.__file__).parent / "assets" / "emotion_cnn.onnx",
                                                 threads=1)

    def analyze(self, image: npt.NDArray[np.uint8]) -> list[FaceScore]:
        from classmood.vision.preprocess import to_grey

        rows = self._detector.detect(image, bgr=True)
        if len(rows) == 0:
            return []
        grey = to_grey(image, bgr=True)
        crops = [_square_crop(grey, row) for row in rows]
        keep = [i for i, crop in enumerate(crops) if crop.size > 0]
        probs = self._classifier.predict([crops[i] for i in keep])
        return [FaceScore(box=(float(rows[i][0]), float(rows[i][1]), float(rows[i][2] - rows[i][0]),
                               float(rows[i][3] - rows[i][1])), score=float(rows[i][4]),
                          probs=tuple(float(p) for p in prob)) for i, prob in zip(keep, probs, strict=True)]


class _PipelineAnalyzer:
    """classmood.vision.pipeline.EmotionAnalyzer (aligned crops exactly as in training)."""

    def __init__(self, max_side: int) -> None:
        from classmood.vision.pipeline import EmotionAnalyzer

        try:
            self._analyzer: Any = EmotionAnalyzer(max_side=max_side)
        except TypeError:
            self._analyzer = EmotionAnalyzer()

    def analyze(self, image: npt.NDArray[np.uint8]) -> list[FaceScore]:
        faces = self._analyzer.analyze(image, bgr=True)
        return [FaceScore(box=tuple(float(v) for v in face.box[:4]), score=float(face.score),  # type: ignore[arg-type]
                          probs=tuple(float(p) for p in np.asarray(face.probs).ravel())) for face in faces]


def make_analyzer(max_side: int = 480) -> Any:
    """The vision pipeline's analyzer when importable, else the fallback (so the server never waits on it)."""
    try:
        return _PipelineAnalyzer(max_side)
    except (ImportError, FileNotFoundError) as exc:
        log.warning("vision pipeline unavailable (%s); using detector + classifier", exc)
        return _FallbackAnalyzer(max_side)


class AnalysisPool:
    """Analyses frames in at most ``threads`` worker threads; the models load on first use."""

    def __init__(self, threads: int = 2, max_side: int = 480) -> None:
        self.threads = threads
        self.max_side = max_side
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="classmood-analysis")
        self._analyzer: Any = None
        self._lock = threading.Lock()

    def _get(self) -> Any:
        with self._lock:
            if self._analyzer is None:
                self._analyzer = make_analyzer(self.max_side)
            return self._analyzer

    def analyze_sync(self, data: bytes) -> list[FaceScore]:
        """Decode and analyse one frame in the calling thread."""
        return list(self._get().analyze(decode_frame(data)))

    async def analyze(self, data: bytes) -> list[FaceScore]:
        """Decode and analyse one frame in the pool, without blocking the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self.analyze_sync, data)

    def close(self) -> None:
        """Stop the worker threads."""
        self._executor.shutdown(wait=False, cancel_futures=True)
