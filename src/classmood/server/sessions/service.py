"""Class sessions: creation, the scheduled → live → ended life cycle, and joining by code."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from classmood.server.accounts.models import User
from classmood.server.courses.models import Course
from classmood.server.courses.service import can_manage
from classmood.server.db import utcnow
from classmood.server.errors import Conflict, Forbidden, NotFound
from classmood.server.sessions.models import ClassSession, Participant

# No 0/O or 1/I/L: codes are read aloud and typed from a slide.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 6
# Settings a PATCH may set to null: back to the server's default.
RESETTABLE = frozenset({"alert_negative_share", "alert_after_s"})


def new_code() -> str:
    """A random join code.

    >>> len(new_code())
    6
    """
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def create_session(db: Session, *, course: Course, title: str, aggregate_only: bool,
                   scheduled_at: datetime | None = None, show_self_to_students: bool = True,
                   frame_interval_s: float = 1.0, analysis_mode: str = "device",
                   allow_server_fallback: bool = False) -> ClassSession:
    """Create a scheduled session with a fresh join code (retrying on the rare code collision)."""
    for _ in range(10):
        session = ClassSession(course_id=course.id, title=title.strip(), code=new_code(), status="scheduled",
                               scheduled_at=scheduled_at, aggregate_only=aggregate_only,
                               show_self_to_students=show_self_to_students, frame_interval_s=frame_interval_s,
                               analysis_mode=analysis_mode, allow_server_fallback=allow_server_fallback)
        db.add(session)
        try:
            db.commit()
            return session
        except IntegrityError:
            db.rollback()
    raise Conflict("could not find a free join code; try again")


def list_sessions(db: Session, *, course: Course) -> list[ClassSession]:
    """A course's sessions, oldest first."""
    return list(db.scalars(select(ClassSession).where(ClassSession.course_id == course.id).order_by(ClassSession.id)))


def get_session(db: Session, *, user: User, session_id: int) -> ClassSession:
    """A session of a course the user manages: 404 if unknown, 403 if another teacher's."""
    session = db.get(ClassSession, session_id)
    if session is None:
        raise NotFound(f"no session {session_id}")
    course = db.get(Course, session.course_id)
    if course is None or not can_manage(user, course):
        raise Forbidden("this session belongs to another teacher's course")
    return session


def start_session(db: Session, *, session: ClassSession) -> ClassSession:
    """Go live (again a no-op when live); an ended session cannot restart (409)."""
    if session.status == "ended":
        raise Conflict("this session has ended; create a new one")
    if session.status == "scheduled":
        session.status, session.started_at = "live", utcnow()
        db.commit()
    return session


def end_session(db: Session, *, session: ClassSession) -> ClassSession:
    """End the session (a no-op when ended): no more joining or ingestion."""
    if session.status != "ended":
        session.status, session.ended_at = "ended", utcnow()
        db.commit()
    return session


def update_session(db: Session, *, session: ClassSession, changes: dict[str, object]) -> ClassSession:
    """Apply the given settings (title, show_self_to_students, aggregate_only, frame_interval_s, analysis_mode,
    allow_server_fallback); students' pages follow a change of analysis mode when they next load.

    Aggregate-only cannot be switched off once data was gathered under it (409).
    """
    if changes.get("aggregate_only") is False and session.aggregate_locked:
        raise Conflict("data was gathered under aggregate-only: this session stays aggregate-only")
    for key, value in changes.items():
        if value is not None or key in RESETTABLE:
            setattr(session, key, value)
    db.commit()
    return session


def session_by_code(db: Session, *, code: str) -> ClassSession:
    """The session with this join code (case and spaces ignored); 404 if none."""
    normal = "".join(code.split()).upper()
    session = db.scalar(select(ClassSession).where(ClassSession.code == normal))
    if session is None:
        raise NotFound("no class session has this code")
    return session


def join_session(db: Session, *, code: str, display_name: str) -> Participant:
    """Add a consenting participant to a scheduled or live session (409 once it has ended)."""
    session = session_by_code(db, code=code)
    if session.status == "ended":
        raise Conflict("this class session has ended")
    participant = Participant(session_id=session.id, display_name=display_name)
    db.add(participant)
    db.commit()
    return participant


def session_owner(db: Session, *, session: ClassSession) -> tuple[Course, User]:
    """The course of a session and its teacher."""
    course = db.get(Course, session.course_id)
    teacher = db.get(User, course.teacher_id) if course else None
    if course is None or teacher is None:
        raise NotFound("the session's course is gone")
    return course, teacher


def frames_refused(session_id: int) -> Conflict:
    """The 409 of the frames endpoints for a session analysed on the students' devices (no server fallback)."""
    return Conflict("this session analyses faces on the students' devices, so the server accepts no camera "
                    f"frames: send scores to /api/sessions/{session_id}/observations (the teacher has not "
                    "allowed server analysis)")


def require_own_session(participant: Participant, session_id: int) -> None:
    """A participant token works only for its own session (403 otherwise)."""
    if participant.session_id != session_id:
        raise Forbidden("this participant token belongs to another session")
