"""HTTP routes of the analytics feature (the course's teacher, or an admin)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from classmood.labels import LABELS
from classmood.server.accounts.models import User
from classmood.server.analytics import service
from classmood.server.analytics.schemas import bucket_out, group_out, histogram_out, participant_out
from classmood.server.analytics.service import Scope
from classmood.server.courses.service import get_course
from classmood.server.db import as_utc, epoch_now
from classmood.server.deps import CurrentAdmin, CurrentUser, SessionDep, StateDep
from classmood.server.errors import Forbidden, Invalid, NotFound
from classmood.server.sessions.models import ClassSession
from classmood.server.sessions.service import get_session

router = APIRouter(prefix="/api", tags=["analytics"])


@dataclass(frozen=True)
class Range:
    """The common query: a time range and an optional participant."""

    since: float | None
    until: float | None
    participant_id: int | None


def time_range(since: float | None = None, until: float | None = None, participant_id: int | None = None,
               last_s: Annotated[float | None, Query(gt=0, description="only the last N seconds")] = None) -> Range:
    """Parse ``since``, ``until``, ``participant_id`` and ``last_s`` (which narrows ``since``)."""
    if last_s is not None:
        since = max(since or 0.0, epoch_now() - last_s)
    if since is not None and until is not None and until <= since:
        raise Invalid("until must be after since")
    return Range(since, until, participant_id)


RangeDep = Annotated[Range, Depends(time_range)]


def _session_scope(session: ClassSession, rng: Range) -> Scope:
    if session.aggregate_only and rng.participant_id is not None:
        raise Forbidden("this session is aggregate-only: no figures about single participants")
    return Scope(session_id=session.id, participant_id=rng.participant_id, since=rng.since, until=rng.until)


@router.get("/sessions/{session_id}/histogram")
def session_histogram(session_id: int, rng: RangeDep, db: SessionDep, user: CurrentUser,
                      state: StateDep) -> dict[str, Any]:
    """Observations per emotion in a session (suppressed below the aggregate-only threshold)."""
    session = get_session(db, user=user, session_id=session_id)
    counts = service.histogram(db, scope=_session_scope(session, rng))
    return histogram_out(counts, session.aggregate_only and counts.participants < state.settings.min_faces)


def _timeline_range(session: ClassSession, rng: Range) -> tuple[float | None, float | None]:
    started, ended = as_utc(session.started_at), as_utc(session.ended_at)
    lo = rng.since if rng.since is not None else (started.timestamp() if started else None)
    if rng.until is not None:
        hi: float | None = rng.until - 1e-6  # until is exclusive
    elif ended is not None:
        hi = ended.timestamp()
    else:
        hi = epoch_now() if session.status == "live" else None
    return lo, hi


@router.get("/sessions/{session_id}/timeline")
def session_timeline(session_id: int, rng: RangeDep, db: SessionDep, user: CurrentUser, state: StateDep,
                     bucket_s: Annotated[float, Query(ge=1, le=86_400)] = 60) -> dict[str, Any]:
    """Counts per time bucket from the start of the session (empty buckets as zeros)."""
    session = get_session(db, user=user, session_id=session_id)
    lo, hi = _timeline_range(session, rng)
    try:
        buckets = service.timeline(db, scope=_session_scope(session, rng), bucket_s=bucket_s, lo=lo, hi=hi,
                                   with_participants=session.aggregate_only)
    except ValueError as exc:
        raise Invalid(str(exc)) from exc
    floor = state.settings.min_faces
    return {"bucket_s": bucket_s, "buckets": [
        bucket_out(b, session.aggregate_only and b.counts.participants < floor) for b in buckets]}


@router.get("/sessions/{session_id}/participants")
def session_participants(session_id: int, rng: RangeDep, db: SessionDep, user: CurrentUser) -> list[dict[str, Any]]:
    """Per participant: observations, last emotion and counts (403 in aggregate-only mode)."""
    session = get_session(db, user=user, session_id=session_id)
    if session.aggregate_only:
        raise Forbidden("this session is aggregate-only: no figures about single participants")
    summaries = service.participant_summaries(db, scope=_session_scope(session, rng))
    return [participant_out(s) for s in summaries]


def _csv_lines(state: Any, scope: Scope) -> Iterator[str]:
    # Its own database session: the response streams after the request's session has closed.
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(service.CSV_COLUMNS)
    with state.sessions() as db:
        for row in service.export_rows(db, scope=scope):
            writer.writerow(row)
            if buffer.tell() > 64_000:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()


@router.get("/sessions/{session_id}/export.csv")
def session_export(session_id: int, rng: RangeDep, db: SessionDep, user: CurrentUser,
                   state: StateDep) -> StreamingResponse:
    """Every observation of the session as CSV, one row each (403 in aggregate-only mode)."""
    session = get_session(db, user=user, session_id=session_id)
    if session.aggregate_only:
        raise Forbidden("this session is aggregate-only: no per-observation export")
    headers = {"Content-Disposition": f'attachment; filename="classmood-session-{session.id}.csv"'}
    return StreamingResponse(_csv_lines(state, _session_scope(session, rng)), media_type="text/csv",
                             headers=headers)


def _scope_histogram(db: Any, state: Any, scope: Scope) -> dict[str, Any]:
    counts = service.histogram(db, scope=scope)
    suppressed = counts.participants < state.settings.min_faces and service.any_aggregate_only(db, scope=scope)
    return histogram_out(counts, suppressed)


@router.get("/courses/{course_id}/histogram")
def course_histogram(course_id: int, rng: RangeDep, db: SessionDep, user: CurrentUser,
                     state: StateDep) -> dict[str, Any]:
    """Observations per emotion over all sessions of a course."""
    get_course(db, user=user, course_id=course_id)
    scope = Scope(course_id=course_id, since=rng.since, until=rng.until)
    return _scope_histogram(db, state, scope)


@router.get("/teachers/{teacher_id}/histogram")
def teacher_histogram(teacher_id: int, rng: RangeDep, db: SessionDep, user: CurrentUser,
                      state: StateDep) -> dict[str, Any]:
    """Observations per emotion over all courses of a teacher (that teacher or an admin)."""
    if user.role != "admin" and user.id != teacher_id:
        raise Forbidden("only your own figures, or an admin")
    if db.get(User, teacher_id) is None:
        raise NotFound(f"no teacher {teacher_id}")
    return _scope_histogram(db, state, Scope(teacher_id=teacher_id, since=rng.since, until=rng.until))


@router.get("/platform/histogram")
def platform_histogram(rng: RangeDep, db: SessionDep, _admin: CurrentAdmin, state: StateDep) -> dict[str, Any]:
    """Observations per emotion on the whole platform (admins)."""
    return _scope_histogram(db, state, Scope(since=rng.since, until=rng.until))


@router.get("/platform/overview")
def platform_overview(rng: RangeDep, db: SessionDep, _admin: CurrentAdmin, state: StateDep,
                      utc_offset_s: Annotated[int, Query(ge=-14 * 3600, le=14 * 3600)] = 0) -> dict[str, Any]:
    """Figures per course, per teacher and per hour of the day (UTC + ``utc_offset_s``) (admins)."""
    groups = service.overview_groups(db, since=rng.since, until=rng.until, utc_offset_s=utc_offset_s)
    teachers, courses = service.names(db)
    floor = state.settings.min_faces

    def hidden(group: service.Group) -> bool:
        return group.aggregate_only and group.counts.participants < floor

    by_hour = {g.key: g for g in groups["hours"]}
    empty = service.Group(0, service.counts_from([]), False)
    return {
        "courses": [group_out(g, hidden(g), course_id=g.key, title=courses.get(g.key, ("?", 0))[0],
                              teacher_id=courses.get(g.key, ("?", 0))[1],
                              teacher=teachers.get(courses.get(g.key, ("?", 0))[1], "?")) for g in groups["courses"]],
        "teachers": [group_out(g, hidden(g), teacher_id=g.key, name=teachers.get(g.key, "?"))
                     for g in groups["teachers"]],
        "hours": [group_out(by_hour.get(h, empty), hidden(by_hour.get(h, empty)), hour=h) for h in range(24)],
        "labels": list(LABELS),
    }
