"""The write path shared by the HTTP frame endpoint, the WebSocket stream and device batches.

Checks are cheap first (size, type, header, rate, session state, duplicate id), then the frame is
analysed in the thread pool and its faces are stored by the group writer (:mod:`.group_writer`, one
transaction for the frames and device batches of many students), then announced to live dashboards.
Presence is the live feature's (:class:`classmood.server.live.presence.PresenceThrottle`, reached through
the server state).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from anyio import to_thread

from classmood.labels import LABELS
from classmood.server.db import epoch_now
from classmood.server.errors import RateLimited
from classmood.server.faces.ingest import record_no_face
from classmood.server.observations import service
from classmood.server.observations.analysis import FaceScore, FrameShed
from classmood.server.observations.context import Sender, SessionMeta, session_meta
from classmood.server.observations.limits import check_frame, image_kind
from classmood.server.observations.schemas import ObservationIn
from classmood.server.observations.service import NewObservation
from classmood.server.sessions.service import frames_refused
from classmood.server.state import ServerState

LIVE_EVENTS_PER_BATCH = 50  # a device's backlog is history: announce only its newest scores


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


def _prepare(state: ServerState, sender: Sender, client_id: uuid.UUID,
             ts: float | None) -> tuple[SessionMeta, bool]:
    with state.sessions() as db:
        meta = session_meta(db, sender.session_id)
        if not meta.accepts_frames:
            raise frames_refused(sender.session_id)
        if ts is not None:
            meta.check_ts(ts)
        seen = service.stored_client_ids(db, participant_id=sender.participant_id, client_ids=[client_id])
        return meta, bool(seen)


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
    # Frames wait for company only while others wait for analysis: a busy server writes fewer, bigger groups.
    writer, patient = state.writers.current(), state.analysis.backlog > 0
    result = service.InsertResult({}, 0)
    if items:
        # The settings read in the writer's transaction, not those read before analysis: a session turned
        # aggregate-only while the frame was analysed announces no per-student event for it.
        meta, result = await writer.write(sender, items, patient=patient)
    stored = [StoredFace(result.inserted[cid], cid, face) for cid, face in zip(ids, faces, strict=True)
              if cid in result.inserted]
    await announce(state, sender, meta, [item for item in items if item.client_id in result.inserted], sent_ts=ts)
    return FrameOutcome(stored, duplicate=bool(items) and not stored, meta=meta)


def device_items(observations: Sequence[ObservationIn]) -> list[NewObservation]:
    """The observations of a validated device batch, ready to store (probabilities in LABELS order)."""
    return [NewObservation(client_id=o.id, ts=o.ts, probs=tuple(o.probs[label] for label in LABELS),
                           score=o.score, source="device") for o in observations]


async def ingest_batch(state: ServerState, sender: Sender, items: Sequence[NewObservation]) -> service.InsertResult:
    """Store device-computed observations idempotently (group commit) and announce the newest."""
    meta, result = await state.writers.current().write(sender, items)
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
    await state.presence.after_activity(sender.session_id, meta.frame_interval_s)
