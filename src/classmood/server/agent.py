"""The desktop agent behind ``classmood join``: a local camera, scores computed on this machine.

By default frames never leave the machine: :class:`Agent` analyses each frame locally and sends
only the seven probabilities, in batches, to ``POST /api/sessions/{id}/observations``. With
``send_frames`` it posts JPEG frames instead. Either way every item gets its client id once and
keeps it: while the server is unreachable items wait in memory (and, for scores, optionally in a
JSONL spool file), and a retry sends the same ids, so the server stores each exactly once.

>>> # client = ServerClient("http://127.0.0.1:8000"); joined = client.join("ABC234", "Ada")
>>> # agent = Agent(client, joined); agent.run(camera_frames(0, interval_s=1.0))
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import numpy.typing as npt

from classmood.labels import LABELS

log = logging.getLogger(__name__)
Frame = npt.NDArray[np.uint8]


class SessionEnded(RuntimeError):
    """The server says the session has ended (409): nothing more will be accepted."""


class Rejected(RuntimeError):
    """The server refused a request for good (4xx other than 409/429): retrying would not help."""


@dataclass(frozen=True)
class Joined:
    """A joined session: the participant's id, the session and its token."""

    participant_id: int
    session_id: int
    token: str


@dataclass(frozen=True)
class Pending:
    """One item waiting to be delivered: scores of a face, or (``send_frames``) a JPEG frame."""

    client_id: str
    ts: float
    probs: dict[str, float] | None = None
    score: float | None = None
    frame: bytes | None = field(default=None, repr=False)

    def as_json(self) -> dict[str, Any]:
        """The observation as the batch endpoint takes it."""
        return {"id": self.client_id, "ts": self.ts, "probs": self.probs, "score": self.score}


class ServerClient:
    """HTTP calls of the agent. Transport errors and 5xx/429 raise ``httpx`` errors (retry later)."""

    def __init__(self, base_url: str, timeout_s: float = 10.0, transport: httpx.BaseTransport | None = None) -> None:
        self._http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout_s, transport=transport)

    def _check(self, response: httpx.Response) -> dict[str, Any]:
        if response.status_code == 409:
            raise SessionEnded(response.json().get("detail", "the session has ended"))
        if response.status_code == 429 or response.status_code >= 500:
            response.raise_for_status()
        if response.status_code >= 400:
            raise Rejected(f"{response.status_code}: {response.text[:200]}")
        result: dict[str, Any] = response.json()
        return result

    def join(self, code: str, name: str) -> Joined:
        """Join a session (the caller has obtained the user's consent)."""
        body = self._check(self._http.post("/api/join", json={"code": code, "display_name": name, "consent": True}))
        return Joined(body["participant_id"], body["session_id"], body["token"])

    def send_batch(self, joined: Joined, items: list[Pending]) -> tuple[int, int]:
        """Post scores; return (accepted, duplicates)."""
        body = self._check(self._http.post(f"/api/sessions/{joined.session_id}/observations",
                                           json={"observations": [item.as_json() for item in items]},
                                           headers={"Authorization": f"Bearer {joined.token}"}))
        return int(body["accepted"]), int(body["duplicates"])

    def send_frame(self, joined: Joined, item: Pending) -> int:
        """Post one frame; return the number of faces stored."""
        response = self._http.post(f"/api/sessions/{joined.session_id}/frames", content=item.frame,
                                   params={"client_id": item.client_id, "ts": item.ts},
                                   headers={"Authorization": f"Bearer {joined.token}", "Content-Type": "image/jpeg"})
        return int(self._check(response)["faces"])

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()


@dataclass
class FlushResult:
    """What one delivery attempt achieved."""

    sent: int = 0
    duplicates: int = 0
    pending: int = 0
    error: str | None = None


class Spool:
    """Scores not yet delivered, one JSON object per line, so that they survive a restart of the agent."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> list[Pending]:
        """Items left by an earlier run."""
        if not self.path.is_file():
            return []
        items = []
        for line in self.path.read_text().splitlines():
            if line.strip():
                raw = json.loads(line)
                items.append(Pending(raw["id"], raw["ts"], raw["probs"], raw.get("score")))
        return items

    def append(self, items: Iterable[Pending]) -> None:
        """Record new items (scores only: frames are never written to disk)."""
        with self.path.open("a") as handle:
            for item in items:
                handle.write(json.dumps(item.as_json()) + "\n")

    def rewrite(self, items: list[Pending]) -> None:
        """Keep only ``items`` (after a delivery); atomic replace so a crash never loses the file."""
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.write_text("".join(json.dumps(item.as_json()) + "\n" for item in items if item.frame is None))
        os.replace(tmp, self.path)


class Agent:
    """Turns frames into pending items and delivers them, exactly once, whenever the server is up."""

    def __init__(self, client: ServerClient, joined: Joined, *, analyzer: Any = None, send_frames: bool = False,
                 spool: Path | None = None, batch_size: int = 200, max_pending: int = 100_000) -> None:
        self.client, self.joined = client, joined
        self.send_frames = send_frames
        self.batch_size, self.max_pending = batch_size, max_pending
        self._analyzer = analyzer
        self._spool = Spool(spool) if spool and not send_frames else None
        self.pending: list[Pending] = self._spool.load() if self._spool else []
        self.delivered = 0

    @property
    def analyzer(self) -> Any:
        """The local face analyzer (vision pipeline, or detector + classifier), loaded on first use."""
        if self._analyzer is None:
            from classmood.server.observations.analysis import make_analyzer

            self._analyzer = make_analyzer()
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
    """Frames from a local camera, one every ``interval_s`` seconds, with their capture times."""
    capture = cv2.VideoCapture(camera)
    if not capture.isOpened():
        raise RuntimeError(f"camera {camera} could not be opened")
    try:
        while True:
            started = time.monotonic()
            ok, frame = capture.read()
            if not ok:
                raise RuntimeError(f"camera {camera} stopped delivering frames")
            yield time.time(), np.asarray(frame, np.uint8)
            time.sleep(max(0.0, interval_s - (time.monotonic() - started)))
    finally:
        capture.release()


def video_frames(path: Path, every_s: float = 1.0, start_ts: float | None = None) -> Iterator[tuple[float, Frame]]:
    """Frames of a video file every ``every_s`` seconds of video, timed from ``start_ts`` (default: now)."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise RuntimeError(f"{path}: not a readable video")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    step = max(1, round(every_s * fps))
    origin = time.time() if start_ts is None else start_ts
    index = 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            if index % step == 0:
                yield origin + index / fps, np.asarray(frame, np.uint8)
            index += 1
    finally:
        capture.release()
