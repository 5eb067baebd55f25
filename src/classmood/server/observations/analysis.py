"""Adapter from frames to face scores through the vision pipeline.

Analysis runs in a bounded thread pool (onnxruntime releases the GIL), so the event loop keeps
serving other students and dashboards while frames are analysed. Frames stay in memory.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

from classmood.labels import LABELS, top_label
from classmood.server.errors import BadRequest


@dataclass(frozen=True)
class FaceScore:
    """One face in a frame: its box (x, y, w, h) in pixels, detection score and seven probabilities."""

    box: tuple[float, float, float, float]
    score: float
    probs: tuple[float, ...]

    @property
    def label_index(self) -> int:
        """Index of the most likely emotion in LABELS."""
        return top_label(self.probs)

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


class _PipelineAnalyzer:
    """classmood.vision.pipeline.EmotionAnalyzer (aligned crops exactly as in training), as FaceScores."""

    def __init__(self, max_side: int) -> None:
        from classmood.vision.pipeline import EmotionAnalyzer

        self._analyzer = EmotionAnalyzer(max_side=max_side)

    def analyze(self, image: npt.NDArray[np.uint8]) -> list[FaceScore]:
        faces = self._analyzer.analyze(image, bgr=True)
        return [FaceScore(box=tuple(float(v) for v in face.box[:4]), score=float(face.score),  # type: ignore[arg-type]
                          probs=tuple(float(p) for p in np.asarray(face.probs).ravel())) for face in faces]


class FrameAnalyzer(Protocol):
    """What the analysis pool runs on each decoded BGR frame."""

    def analyze(self, image: npt.NDArray[np.uint8]) -> list[FaceScore]: ...


def make_analyzer(max_side: int = 480) -> FrameAnalyzer:
    """The vision pipeline's analyzer, adapted to the server's FaceScore."""
    return _PipelineAnalyzer(max_side)


class AnalysisPool:
    """Analyses frames in at most ``threads`` worker threads; the models load on first use."""

    def __init__(self, threads: int = 2, max_side: int = 480) -> None:
        self.threads = threads
        self.max_side = max_side
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="classmood-analysis")
        self._analyzer: FrameAnalyzer | None = None
        self._lock = threading.Lock()

    def _get(self) -> FrameAnalyzer:
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
