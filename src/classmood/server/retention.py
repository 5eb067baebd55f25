"""Retention: ``classmood purge`` deletes what is older than the retention period, across features.

It spans the observations, the sealed figures of aggregate-only sessions (analytics) and the participants
(sessions), so it lives above the features rather than in one of them (which would make it import another
feature's tables upward).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session

from classmood.server.analytics.models import AggregateCell
from classmood.server.faces.models import NoFaceSample
from classmood.server.observations.models import Observation
from classmood.server.sessions.models import ClassSession, Participant


def purge(db: Session, *, before_ts: float) -> tuple[int, int]:
    """Delete observations older than ``before_ts``, the aggregate-only cells that ended before it, and the
    participants of sessions that ended before it and have no observation left; commits. Return
    (observations, participants) deleted."""
    done = db.execute(delete(Observation).where(Observation.ts < before_ts))
    db.execute(delete(NoFaceSample).where(NoFaceSample.ts < before_ts))
    # The sealed figures of aggregate-only sessions are kept no longer than the observations they sum.
    db.execute(delete(AggregateCell).where((AggregateCell.cell + 1) * AggregateCell.cell_s <= before_ts))
    cutoff = datetime.fromtimestamp(before_ts, UTC)
    ended_before = select(ClassSession.id).where(ClassSession.status == "ended", ClassSession.ended_at < cutoff)
    has_rows = exists().where(Observation.participant_id == Participant.id)
    gone = db.execute(delete(Participant).where(Participant.session_id.in_(ended_before), ~has_rows)
                      .execution_options(synchronize_session=False))
    db.commit()
    return int(done.rowcount or 0), int(gone.rowcount or 0)  # type: ignore[attr-defined]
