"""Who sends a score and what ingestion knows of its session: shared by the frame path and the group writer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from classmood.server.observations import service


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


def session_meta(db: Session, session_id: int) -> SessionMeta:
    """The live session's settings; locks aggregate-only for good once data is gathered under it."""
    session = service.live_session(db, session_id=session_id)
    if session.aggregate_only and not session.aggregate_locked:
        session.aggregate_locked = True
        db.commit()
    return SessionMeta(session.private, session.show_self_to_students, session.frame_interval_s, session.started_at,
                       session.accepts_frames)
