"""Storing no-face samples: the ``no_face`` list of a device batch, and server-analysed frames without a face.

The hooks in :mod:`classmood.server.observations` call :func:`record_no_face` before the batch's observations
are written: it checks every time of the batch (its observations' too) against the session's live window, so a
refused batch stores nothing, then stores the samples idempotently by their ids (``INSERT … ON CONFLICT DO
NOTHING``). A batch without ``no_face`` costs nothing here.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from anyio import to_thread
from sqlalchemy import update
from sqlalchemy.orm import Session

from classmood.server.analytics.sql import upsert_insert
from classmood.server.db import epoch_now
from classmood.server.faces.models import NoFaceSample
from classmood.server.observations.service import check_timestamp, live_session
from classmood.server.sessions.models import Participant
from classmood.server.state import ServerState


@dataclass(frozen=True)
class NoFaceResult:
    """The ids of a batch's no-face samples newly stored, and of those stored before."""

    inserted: list[uuid.UUID] = field(default_factory=list)
    duplicates: list[uuid.UUID] = field(default_factory=list)


def store_no_face(db: Session, *, session_id: int, participant_id: int, samples: Sequence[tuple[uuid.UUID, float]],
                  other_ts: Sequence[float] = ()) -> NoFaceResult:
    """Check the batch's times (``other_ts``: its observations'), then store the (id, ts) samples; commits."""
    session = live_session(db, session_id=session_id)
    for ts in (*other_ts, *(ts for _, ts in samples)):
        check_timestamp(ts, started_at=session.started_at)
    if session.aggregate_only and not session.aggregate_locked:
        session.aggregate_locked = True  # data gathered under aggregate-only stays so (as observations do)
    unique = {client_id: ts for client_id, ts in samples}
    rows = [{"session_id": session_id, "participant_id": participant_id, "client_id": cid, "ts": ts}
            for cid, ts in unique.items()]
    insert = upsert_insert(db, NoFaceSample).on_conflict_do_nothing(index_elements=["participant_id", "client_id"])
    stored = db.execute(insert.returning(NoFaceSample.client_id), rows)
    inserted = {row[0] for row in stored}
    db.execute(update(Participant).where(Participant.id == participant_id).values(last_seen=epoch_now()))
    db.commit()
    return NoFaceResult(inserted=[c for c in unique if c in inserted], duplicates=[c for c in unique
                                                                                  if c not in inserted])


async def record_no_face(state: ServerState, *, session_id: int, participant_id: int,
                         samples: Sequence[tuple[uuid.UUID, float]], other_ts: Sequence[float] = ()) -> NoFaceResult:
    """:func:`store_no_face` in a worker thread; nothing at all (no query) without samples."""
    if not samples:
        return NoFaceResult()

    def run() -> NoFaceResult:
        with state.sessions() as db:
            return store_no_face(db, session_id=session_id, participant_id=participant_id, samples=samples,
                                 other_ts=other_ts)

    return await to_thread.run_sync(run)
