"""The agent's loop: frames in, pending items out, delivered exactly once whenever the server is up.

By default frames never leave the machine: :class:`Agent` analyses each frame with the vision
pipeline and sends only the seven probabilities, in batches. With ``send_frames`` it posts JPEG
frames instead. Either way every item gets its client id once and keeps it: while the server is
unreachable items wait in memory (and, for scores, in the spool file), and a retry sends the same
ids, so the server stores each exactly once.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import httpx
import numpy as np
import numpy.typing as npt

from classmood.agent.client import Joined, Pending, Rejected, ServerClient, normal_code
from classmood.agent.spool import Spool
from classmood.labels import LABELS
from classmood.vision import video

log = logging.getLogger(__name__)
Frame = npt.NDArray[np.uint8]


class LocalFace(Protocol):
    """What the agent reads of a face found on this machine."""

    @property
    def score(self) -> float: ...

    @property
    def probs(self) -> npt.NDArray[Any]: ...


class LocalAnalyzer(Protocol):
    """Finds faces and their emotions in a BGR frame (``classmood.vision.pipeline.EmotionAnalyzer``)."""

    def analyze(self, frame: Frame, bgr: bool = True) -> Sequence[LocalFace]: ...


@dataclass
class FlushResult:
    """What one delivery attempt achieved."""

    sent: int = 0
    duplicates: int = 0
    pending: int = 0
    error: str | None = None


def join_or_resume(client: ServerClient, code: str, name: str, spool: Path | None) -> tuple[Joined, bool]:
    """The participant of an earlier run with this spool (same server and code), else a new one.

    Returns (joined, resumed). A new participant is remembered in the spool at once.
    """
    store = Spool(spool) if spool else None
    saved = store.participant(client.base_url) if store else None
    if saved is not None and saved.code == normal_code(code):
        return saved, True
    joined = client.join(code, name)
    if store:
        store.remember(client.base_url, joined)
    return joined, False


class Agent:
    """Turns frames into pending items and delivers them, exactly once, whenever the server is up."""

    def __init__(self, client: ServerClient, joined: Joined, *, analyzer: LocalAnalyzer | None = None,
                 send_frames: bool = False, spool: Path | None = None, batch_size: int = 200,
                 max_pending: int = 100_000) -> None:
        self.client, self.joined = client, joined
        self.send_frames = send_frames
        self.batch_size, self.max_pending = batch_size, max_pending
        self._analyzer = analyzer
        self._spool = Spool(spool) if spool and not send_frames else None
        self.pending: list[Pending] = self._spool.load() if self._spool else []
        self.delivered = 0

    @property
    def analyzer(self) -> LocalAnalyzer:
        """The local face analyzer (the vision pipeline), loaded on first use."""
        if self._analyzer is None:
            from classmood.vision.pipeline import EmotionAnalyzer

            self._analyzer = EmotionAnalyzer()
        return self._analyzer

    def observe(self, frame: Frame, ts: float | None = None) -> int:
        """Queue one BGR frame (its faces' scores, or the JPEG); return how many items were queued."""
        ts = time.time() if ts is None else ts
        if self.send_frames:
            ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])
            items = [Pending(str(uuid.uuid4()), ts, frame=jpeg.tobytes())] if ok else []
        else:
            items = [Pending(str(uuid.uuid4()), ts, probs=dict(zip(LABELS, map(float, face.probs), strict=True)),
                             score=float(face.score)) for face in self.analyzer.analyze(frame)]
        self._queue(items)
        return len(items)

    def _queue(self, items: list[Pending]) -> None:
        if self._spool and items:
            self._spool.append(items)
        self.pending.extend(items)
        if len(self.pending) > self.max_pending:
            # Memory is finite: past the cap the oldest wait in the spool only (or are dropped without one).
            log.warning("%d items pending; dropping the oldest from memory", len(self.pending) - self.max_pending)
            self.pending = self.pending[-self.max_pending:]

    def flush(self) -> FlushResult:
        """Deliver pending items in order until done or the server is unreachable (then keep the rest)."""
        result = FlushResult()
        try:
            while self.pending:
                chunk = self.pending[:1] if self.send_frames else self.pending[: self.batch_size]
                try:
                    sent, duplicates = self._deliver(chunk)
                except Rejected as exc:
                    log.error("server refused %d item(s), dropping them: %s", len(chunk), exc)
                    sent, duplicates = 0, 0
                del self.pending[: len(chunk)]
                result.sent += sent
                result.duplicates += duplicates
                self.delivered += sent
        except httpx.HTTPError as exc:
            result.error = f"{type(exc).__name__}: {exc}"
        finally:
            if self._spool:
                self._spool.rewrite(self.pending)
        result.pending = len(self.pending)
        return result

    def _deliver(self, chunk: list[Pending]) -> tuple[int, int]:
        if self.send_frames:
            self.client.send_frame(self.joined, chunk[0])
            return 1, 0
        return self.client.send_batch(self.joined, chunk)

    def run(self, frames: Iterable[tuple[float, Frame]], *, flush_every_s: float = 5.0,
            on_flush: Callable[[FlushResult], None] | None = None) -> FlushResult:
        """Observe every frame, delivering every ``flush_every_s`` seconds (backing off while the server is down)."""
        next_flush, backoff = 0.0, flush_every_s
        last = FlushResult()
        for ts, frame in frames:
            self.observe(frame, ts)
            now = time.monotonic()
            if now >= next_flush:
                last = self.flush()
                backoff = min(backoff * 2, 60.0) if last.error else flush_every_s
                next_flush = now + backoff
                if on_flush:
                    on_flush(last)
        last = self.flush()
        if on_flush:
            on_flush(last)
        return last


def camera_frames(camera: int, interval_s: float = 1.0) -> Iterator[tuple[float, Frame]]:
    """Frames from a local camera (``vision.video``), one every ``interval_s`` seconds, with capture times."""
    for frame in video.camera_frames(camera, f"{interval_s}s"):
        yield time.time(), frame.image


def video_frames(path: Path, every_s: float = 1.0, start_ts: float | None = None) -> Iterator[tuple[float, Frame]]:
    """Frames of a video file (``vision.video``) every ``every_s`` seconds of video, timed from ``start_ts``
    (default: now), as if a camera were filming the class."""
    origin = time.time() if start_ts is None else start_ts
    for frame in video.read_frames(path, f"{every_s}s"):
        yield origin + frame.time_s, frame.image
