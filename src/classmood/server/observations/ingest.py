"""The write path shared by the HTTP frame endpoint, the WebSocket stream and device batches.

Checks are cheap first (size, type, header, rate, session state, duplicate id), then the frame is
analysed in the thread pool, stored in one idempotent INSERT, and announced to live dashboards.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from anyio import to_thread
from sqlalchemy.orm import Session

from classmood.config import Settings
from classmood.labels import LABELS
from classmood.server.db import epoch_now
from classmood.server.errors import DomainError, RateLimited, TooLarge
from classmood.server.faces.ingest import record_no_face
from classmood.server.observations import service
from classmood.server.observations.analysis import FaceScore, FrameShed
from classmood.server.observations.limits import check_frame, image_kind
from classmood.server.observations.schemas import ObservationIn
from classmood.server.observations.service import NewObservation
from classmood.server.sessions.service import frames_refused
from classmood.server.state import ServerState

LIVE_EVENTS_PER_BATCH = 50  # a device's backlog is history: announce only its newest scores
PRESENCE_EVERY_S = 1.0


@dataclass(frozen=True)
class Sender:
    """The participant a frame or batch comes from."""

    participant_id: int
    session_id: int
    display_name: str


@dataclass(frozen=True)
class SessionMeta:
    """What ingestion needs to know about the (live) session."""

    aggregate_only: bool  # the session is private (ClassSession.private): no per-participant live events
    show_self: bool
    frame_interval_s: float
    started_at: datetime | None
    accepts_frames: bool = True  # False in on-device mode without the teacher's server fallback

    def check_ts(self, ts: float) -> None:
        """Refuse a timestamp outside this session's live window (422)."""
        service.check_timestamp(ts, started_at=self.started_at)


@dataclass(frozen=True)
class StoredFace:
    """A face of a frame and the observation row it became."""

    id: int
    client_id: uuid.UUID
    face: FaceScore


@dataclass(frozen=True)
class FrameOutcome:
    """Result of one frame: the faces stored, or ``duplicate`` when its id was stored before."""

    stored: list[StoredFace]
    duplicate: bool
    meta: SessionMeta
    shed: bool = False  # not analysed: a newer frame of the same student came, or it waited too long (overload)


def face_client_ids(client_id: uuid.UUID, count: int) -> list[uuid.UUID]:
    """Client ids of the faces of one frame: the frame's own id, then ids derived from it.

    >>> ids = face_client_ids(uuid.UUID(int=1), 2)
    >>> ids[0] == uuid.UUID(int=1), ids == face_client_ids(uuid.UUID(int=1), 2), face_client_ids(ids[0], 0)
    (True, True, [])
    """
    if count <= 0:
        return []
    return [client_id] + [uuid.uuid5(client_id, f"face-{k}") for k in range(1, count)]


async def _take_rate(state: ServerState, participant_id: int, wait_s: float) -> None:
    # HTTP callers get 429 at once; the WebSocket may wait a little (back-pressure on a fast sender).
    deadline = time.monotonic() + wait_s
    while (wait := state.rate.acquire(participant_id)) > 0:
        if time.monotonic() + wait > deadline:
            raise RateLimited(f"more than {state.rate.rate:g} frames per second; slow down")
        await asyncio.sleep(wait)


def _session_meta(db: Session, session_id: int) -> SessionMeta:
    """The live session's settings; locks aggregate-only for good once data is gathered under it."""
    session = service.live_session(db, session_id=session_id)
    if session.aggregate_only and not session.aggregate_locked:
        session.aggregate_locked = True
        db.commit()
    return SessionMeta(session.private, session.show_self_to_students, session.frame_interval_s, session.started_at,
                       session.accepts_frames)


def _prepare(state: ServerState, sender: Sender, client_id: uuid.UUID,
             ts: float | None) -> tuple[SessionMeta, bool]:
    with state.sessions() as db:
        meta = _session_meta(db, sender.session_id)
        if not meta.accepts_frames:
            raise frames_refused(sender.session_id)
        if ts is not None:
            meta.check_ts(ts)
        seen = service.stored_client_ids(db, participant_id=sender.participant_id, client_ids=[client_id])
        return meta, bool(seen)


def _store(state: ServerState, sender: Sender, items: Sequence[NewObservation]) -> service.InsertResult:
    with state.sessions() as db:
        return service.insert_observations(db, session_id=sender.session_id, participant_id=sender.participant_id,
                                           items=items)


def _keep_frame(state: ServerState, sender: Sender, client_id: uuid.UUID, data: bytes) -> None:
    # Only when CLASSMOOD_STORE_FRAMES asks for it; by default frames never touch the disk.
    folder = state.settings.data_dir / "frames" / str(sender.session_id) / str(sender.participant_id)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".png" if image_kind(data) == "png" else ".jpg"
    (folder / f"{client_id}{suffix}").write_bytes(data)


async def ingest_frame(state: ServerState, sender: Sender, data: bytes, *, client_id: uuid.UUID | None = None,
                       ts: float | None = None, rate_wait_s: float = 0.0) -> FrameOutcome:
    """Check, analyse, store and announce one frame of a participant."""
    check_frame(data, state.settings)
    await _take_rate(state, sender.participant_id, rate_wait_s)
    client_id = client_id or uuid.uuid4()
    meta, duplicate = await to_thread.run_sync(_prepare, state, sender, client_id, ts)
    if duplicate:
        return FrameOutcome([], True, meta)
    try:
        faces = await state.analysis.analyze(data, key=sender.participant_id, sent_ts=ts)
    except FrameShed:
        return FrameOutcome([], False, meta, shed=True)
    if state.settings.store_frames:
        await to_thread.run_sync(_keep_frame, state, sender, client_id, data)
    when = ts if ts is not None else epoch_now()
    if not faces:  # a no-face sample under the frame's id (faces in view; not an observation)
        await record_no_face(state, session_id=sender.session_id, participant_id=sender.participant_id,
                             samples=[(client_id, when)])
    ids = face_client_ids(client_id, len(faces))
    items = [NewObservation(client_id=cid, ts=when, probs=face.probs, score=face.score, source="frame")
             for cid, face in zip(ids, faces, strict=True)]
    result = await to_thread.run_sync(_store, state, sender, items)
    stored = [StoredFace(result.inserted[cid], cid, face) for cid, face in zip(ids, faces, strict=True)
              if cid in result.inserted]
    await announce(state, sender, meta, [item for item in items if item.client_id in result.inserted], sent_ts=ts)
    return FrameOutcome(stored, duplicate=bool(items) and not stored, meta=meta)


@dataclass
class _Job:
    sender: Sender
    items: Sequence[NewObservation]
    done: asyncio.Future[tuple[SessionMeta, service.InsertResult]]


def _checked_meta(db: Session, sender: Sender, items: Sequence[NewObservation],
                  metas: dict[int, SessionMeta | DomainError]) -> SessionMeta:
    """The sender's live session (cached per group), after the checks of the batch's times and probabilities."""
    if sender.session_id not in metas:
        try:
            metas[sender.session_id] = _session_meta(db, sender.session_id)
        except DomainError as exc:
            metas[sender.session_id] = exc
    meta = metas[sender.session_id]
    if isinstance(meta, DomainError):
        raise meta
    for item in items:
        meta.check_ts(item.ts)
    service.check_probs(items)
    return meta


Outcome = tuple[SessionMeta, service.InsertResult] | BaseException


def _write_group(state: ServerState, jobs: Sequence[_Job]) -> list[Outcome]:
    """Check and store many batches in one transaction; per batch its outcome (the answer or its 4xx)."""
    outcomes: list[Outcome | None] = []
    with state.sessions() as db:
        metas: dict[int, SessionMeta | DomainError] = {}
        good: list[tuple[int, SessionMeta, service.Batch]] = []
        for job in jobs:
            try:
                meta = _checked_meta(db, job.sender, job.items, metas)
            except DomainError as exc:
                outcomes.append(exc)
                continue
            outcomes.append(None)  # its result once the group is committed
            good.append((len(outcomes) - 1, meta, service.Batch(job.sender.session_id, job.sender.participant_id,
                                                                job.items)))
        try:
            results = service.insert_batches(db, [batch for _, _, batch in good])
        except Exception:
            db.rollback()
            return _write_each(state, jobs)  # one bad batch (or an outage) must not fail the others: one by one
    for (k, meta, _), result in zip(good, results, strict=True):
        outcomes[k] = (meta, result)
    return [outcome for outcome in outcomes if outcome is not None]


def _write_each(state: ServerState, jobs: Sequence[_Job]) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for job in jobs:
        try:
            with state.sessions() as db:
                meta = _checked_meta(db, job.sender, job.items, {})
                result = service.insert_observations(db, session_id=job.sender.session_id,
                                                     participant_id=job.sender.participant_id, items=job.items)
            outcomes.append((meta, result))
        except Exception as exc:  # handed to that batch's request, which answers it as before
            outcomes.append(exc)
    return outcomes


class GroupWriter:
    """Group commit of device batches: concurrent requests share one transaction and one INSERT.

    Each request waits for its batch's own outcome, given only after the group's COMMIT, so an acknowledged
    score is stored and a refused one is answered with its 4xx as before. Self-clocking: while one group is
    written the next requests queue, so a quiet server writes at once and a busy one writes bigger groups.
    One writer thread also keeps the worker threads (and the GIL) free for the event loop and the dashboards.
    """

    MAX_JOBS = 500
    # Groups start at most this often. A group's fixed cost (its session check, participants' last-seen
    # update, COMMIT, a pool checkout) is paid per group, in the writer thread, holding the GIL for its
    # Python part: written back to back, small groups kept the thread busy and starved the event loop at
    # a few hundred students. Waiting for company costs a score at most this much; a quiet server, whose
    # last group is older than this, writes at once.
    LINGER_S = 0.02

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self._queue: list[_Job] = []
        self._task: asyncio.Task[None] | None = None
        self._last_start = -math.inf

    async def write(self, sender: Sender, items: Sequence[NewObservation]) -> tuple[SessionMeta,
                                                                                   service.InsertResult]:
        """Check and store one participant's batch; its session's settings and the insert result."""
        job = _Job(sender, items, asyncio.get_running_loop().create_future())
        self._queue.append(job)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        return await job.done

    async def _run(self) -> None:
        jobs: list[_Job] = []
        try:
            while self._queue:
                if (wait := self._last_start + self.LINGER_S - time.monotonic()) > 0 and \
                        len(self._queue) < self.MAX_JOBS:
                    await asyncio.sleep(wait)
                self._last_start = time.monotonic()
                jobs, self._queue = self._queue[: self.MAX_JOBS], self._queue[self.MAX_JOBS :]
                try:
                    outcomes: list[Outcome] = await to_thread.run_sync(_write_group, self.state, jobs)
                except Exception as exc:  # every waiting request must get an answer (its 5xx)
                    outcomes = [exc] * len(jobs)
                self._answer(jobs, outcomes)
                jobs = []
        except asyncio.CancelledError:  # server shutdown: nobody waits in vain
            for job in [*jobs, *self._queue]:
                job.done.cancel()
            raise

    @staticmethod
    def _answer(jobs: Sequence[_Job], outcomes: Sequence[Outcome]) -> None:
        for job, outcome in zip(jobs, outcomes, strict=True):
            if job.done.done():  # its request was cancelled (client gone): the rows are stored anyway
                continue
            if isinstance(outcome, BaseException):
                job.done.set_exception(outcome)
            else:
                job.done.set_result(outcome)


def group_writer(state: ServerState) -> GroupWriter:
    """The state's group writer of the running event loop (its queue and task belong to that loop)."""
    loop = asyncio.get_running_loop()
    writer = state.writers.get(loop)
    if not isinstance(writer, GroupWriter):
        writer = state.writers[loop] = GroupWriter(state)
    return writer


def check_batch_size(count: int, settings: Settings) -> None:
    """Refuse (413) a batch of more than ``batch_max`` observations (HTTP body and stream message alike)."""
    if count > settings.batch_max:
        raise TooLarge(f"{count} observations; send at most {settings.batch_max} per batch")


def device_items(observations: Sequence[ObservationIn]) -> list[NewObservation]:
    """The observations of a validated device batch, ready to store (probabilities in LABELS order)."""
    return [NewObservation(client_id=o.id, ts=o.ts, probs=tuple(o.probs[label] for label in LABELS),
                           score=o.score, source="device") for o in observations]


async def ingest_batch(state: ServerState, sender: Sender, items: Sequence[NewObservation]) -> service.InsertResult:
    """Store device-computed observations idempotently (group commit) and announce the newest."""
    meta, result = await group_writer(state).write(sender, items)
    fresh = sorted((item for item in items if item.client_id in result.inserted), key=lambda item: item.ts)
    await announce(state, sender, meta, fresh[-LIVE_EVENTS_PER_BATCH:], sent_ts=None)
    return result


async def announce(state: ServerState, sender: Sender, meta: SessionMeta, items: Sequence[NewObservation],
                   sent_ts: float | None) -> None:
    """Publish observation events (not in aggregate-only mode) and, throttled, the session's presence."""
    if not meta.aggregate_only:
        for item in items:
            data: dict[str, object] = {"participant_id": sender.participant_id, "display_name": sender.display_name,
                                       "ts": item.ts, "label": LABELS[item.label],
                                       "probs": dict(zip(LABELS, item.probs, strict=True)),
                                       "client_id": str(item.client_id)}
            if sent_ts is not None:
                data["sent_ts"] = sent_ts
            await state.broker.publish(sender.session_id, "observation", data)
    now = time.monotonic()
    if now - state.presence_sent.get(sender.session_id, 0.0) >= PRESENCE_EVERY_S:
        state.presence_sent[sender.session_id] = now
        counts = await to_thread.run_sync(current_presence, state, sender.session_id, meta.frame_interval_s)
        await state.broker.publish(sender.session_id, "presence", counts)


def presence_window(frame_interval_s: float) -> float:
    """How recent a frame must be for its sender to count as present."""
    return max(10.0, 3 * frame_interval_s)


def current_presence(state: ServerState, session_id: int, frame_interval_s: float) -> dict[str, int]:
    """Present participants and visible faces of a session, from the database."""
    with state.sessions() as db:
        return service.presence(db, session_id=session_id, window_s=presence_window(frame_interval_s))
