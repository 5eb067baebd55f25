"""Adapter from frames to face scores through the vision pipeline.

Analysis runs in a bounded thread pool (onnxruntime releases the GIL), so the event loop keeps
serving other students and dashboards while frames are analysed. Frames stay in memory. Under overload
the pool sheds frames (latest wins per student, none older than a few seconds) instead of letting
delays grow: see :class:`AnalysisPool`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np
import numpy.typing as npt

from classmood.labels import LABELS, top_label
from classmood.server.errors import BadRequest

if TYPE_CHECKING:
    from classmood.vision.search import FaceSearch


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
    """classmood.vision.pipeline.EmotionAnalyzer (aligned crops exactly as in training), as FaceScores.

    Each student's frames are one stream (classmood.vision.search: faces looked for near where they were,
    unchanged pictures and crops not analysed again), keyed by the pool's ``key``; a frame of a student whose
    previous frame is still being analysed, or without a key, is analysed on its own.
    """

    def __init__(self, max_side: int, streams: int = 10_000) -> None:
        from classmood.vision.classifier import EmotionClassifier
        from classmood.vision.detector import CenterFaceDetector
        from classmood.vision.pipeline import EmotionAnalyzer

        # One thread per call: the pool's workers are the parallelism. onnxruntime's own intra-op threads, on
        # top of them, spun on the cores the workers and the event loop need (2 workers with 2 threads in each
        # of the two sessions: 1.3 of the 1.9 cores the server used under load went to those threads).
        self._analyzer = EmotionAnalyzer(max_side=max_side, detector=CenterFaceDetector(threads=1),
                                         classifier=EmotionClassifier(threads=1))
        self._streams: OrderedDict[object, tuple[threading.Lock, FaceSearch]] = OrderedDict()
        self._max_streams = streams
        self._lock = threading.Lock()

    def _stream(self, key: object) -> tuple[threading.Lock, FaceSearch]:
        with self._lock:
            entry = self._streams.pop(key, None) or (threading.Lock(), self._analyzer.new_search())
            self._streams[key] = entry  # most recent last; the oldest students are forgotten first
            while len(self._streams) > self._max_streams:
                self._streams.popitem(last=False)
            return entry

    def analyze(self, image: npt.NDArray[np.uint8], key: object = None) -> list[FaceScore]:
        lock, search = self._stream(key) if key is not None else (None, None)
        if lock is not None and lock.acquire(blocking=False):
            try:
                faces = self._analyzer.analyze(image, bgr=True, search=search, time_s=time.monotonic())
            finally:
                lock.release()
        else:
            faces = self._analyzer.analyze(image, bgr=True)
        return [FaceScore(box=tuple(float(v) for v in face.box[:4]), score=float(face.score),  # type: ignore[arg-type]
                          probs=tuple(float(p) for p in np.asarray(face.probs).ravel())) for face in faces]


class FrameAnalyzer(Protocol):
    """What the analysis pool runs on each decoded BGR frame."""

    def analyze(self, image: npt.NDArray[np.uint8], key: object = None) -> list[FaceScore]: ...


def make_analyzer(max_side: int = 480) -> FrameAnalyzer:
    """The vision pipeline's analyzer, adapted to the server's FaceScore."""
    return _PipelineAnalyzer(max_side)


class FrameShed(Exception):  # an outcome, not a failure: the frame was skipped on purpose
    """The frame was not analysed: a newer frame of the same student arrived, or it waited longer than max_age_s."""


@dataclass
class ShedCounts:
    """What the pool did with the frames it was given since it started."""

    analysed: int = 0
    superseded: int = 0  # replaced by a newer frame of the same student before a worker took it
    stale: int = 0  # waited longer than max_age_s: analysing it would only tell the dashboard about the past

    @property
    def shed(self) -> int:
        """Frames skipped on purpose (superseded + stale)."""
        return self.superseded + self.stale


@dataclass
class _Job:
    key: object
    data: bytes
    future: Future[list[FaceScore]]
    received: float


class AnalysisPool:
    """Analyses frames in ``threads`` worker threads; the models load on first use.

    Overload protection: each student (``key``) has at most one frame waiting, and a newer frame replaces it
    ("latest wins", the older one raises :class:`FrameShed`). A frame that waited more than ``max_age_s`` is
    shed as well. So the queue never holds more than one frame per student, and a frame's delay stays below
    ``max_age_s`` plus one analysis, however many students send: under overload each student's scores simply
    come less often. :attr:`counts` says how many frames were analysed and shed.
    """

    def __init__(self, threads: int = 2, max_side: int = 480, max_age_s: float = 3.0) -> None:
        self.threads = threads
        self.max_side = max_side
        self.max_age_s = max_age_s
        self.counts = ShedCounts()
        self._analyzer: FrameAnalyzer | None = None
        self._load_lock = threading.Lock()  # the models load once, without holding up the queue
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._lag_floor: dict[object, float] = {}  # key -> smallest (arrival - sent_ts) seen
        self._waiting: dict[object, _Job] = {}  # key -> its one waiting frame, in arrival order of the keys
        self._closed = False
        self._workers: list[threading.Thread] = []  # started by the first frame

    @property
    def backlog(self) -> int:
        """Frames waiting for a worker now (at most one per student)."""
        return len(self._waiting)

    def _get(self) -> FrameAnalyzer:
        with self._load_lock:
            if self._analyzer is None:
                self._analyzer = make_analyzer(self.max_side)
            return self._analyzer

    def analyze_sync(self, data: bytes, key: object = None) -> list[FaceScore]:
        """Decode and analyse one frame in the calling thread (no queue, no shedding); ``key``: its student."""
        return list(self._get().analyze(decode_frame(data), key))

    def submit(self, data: bytes, key: object = None, sent_ts: float | None = None) -> Future[list[FaceScore]]:
        """Queue a frame for the workers; a waiting frame of the same ``key`` is shed (``None``: never).

        ``sent_ts`` (the sender's clock, epoch seconds) counts the time a frame spent before it reached the
        pool, e.g. queued in a WebSocket behind a student's earlier frames, so that it ages too.
        """
        job = _Job(key, data, Future(), time.monotonic() - self._transit_s(key, sent_ts))
        with self._lock:
            if self._closed:
                raise RuntimeError("the analysis pool is closed")
            slot = object() if key is None else key
            replaced = self._waiting.pop(slot, None)
            self._waiting[slot] = job  # re-inserted: the newest frame queues behind the other students
            if replaced is not None:
                self.counts.superseded += 1
            if not self._workers:
                self._workers = [threading.Thread(target=self._work, name=f"classmood-analysis-{i}", daemon=True)
                                 for i in range(self.threads)]
                for worker in self._workers:
                    worker.start()
            self._ready.notify()
        if replaced is not None:
            replaced.future.set_exception(FrameShed("a newer frame of this student replaced it"))
        return job.future

    async def analyze(self, data: bytes, key: object = None, sent_ts: float | None = None) -> list[FaceScore]:
        """Decode and analyse one frame in the pool without blocking the event loop; may raise FrameShed."""
        return await asyncio.wrap_future(self.submit(data, key, sent_ts))

    def _transit_s(self, key: object, sent_ts: float | None) -> float:
        """How long this frame took to arrive, beyond the fastest frame of the same sender.

        A device's clock may be off by minutes, so its timestamps are compared with each other, not with the
        server's clock: the smallest (arrival - sent) seen of a sender is its offset plus its quickest trip.
        """
        if key is None or sent_ts is None:
            return 0.0
        lag = time.time() - sent_ts
        with self._lock:
            floor = min(self._lag_floor.get(key, lag), lag)
            self._lag_floor[key] = floor
            if len(self._lag_floor) > 100_000:  # one float per student; forget them all rather than grow forever
                self._lag_floor = {key: floor}
        return max(0.0, lag - floor)

    def _next(self) -> _Job | None:
        """The oldest waiting frame young enough to analyse (stale ones are shed on the way); None when closed."""
        while True:
            with self._lock:
                while not self._waiting and not self._closed:
                    self._ready.wait()
                if self._closed:
                    return None
                job = self._waiting.pop(next(iter(self._waiting)))
                fresh = time.monotonic() - job.received <= self.max_age_s
                if fresh:
                    self.counts.analysed += 1
                    return job
                self.counts.stale += 1
            job.future.set_exception(FrameShed(f"waited more than {self.max_age_s:g} s for analysis"))

    def _work(self) -> None:
        while (job := self._next()) is not None:
            if not job.future.set_running_or_notify_cancel():
                continue
            try:
                job.future.set_result(self.analyze_sync(job.data, job.key))
            except BaseException as exc:  # handed to the awaiting request, which turns it into its answer
                job.future.set_exception(exc)

    def close(self) -> None:
        """Stop the worker threads; frames still waiting are shed."""
        with self._lock:
            self._closed = True
            waiting, self._waiting = list(self._waiting.values()), {}
            self._ready.notify_all()
        for job in waiting:
            job.future.set_exception(FrameShed("the server is shutting down"))
