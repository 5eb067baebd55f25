"""HTTP routes of the analytics feature (the course's teacher, or an admin).

Each route parses its query and calls one function of :mod:`.service`, which applies the privacy rules.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from classmood.config import MAX_SMOOTH_WINDOW_S
from classmood.server.analytics import service
from classmood.server.analytics.schemas import HistogramOut, OverviewOut, ParticipantOut, TimelineOut
from classmood.server.analytics.service import Policy, Window
from classmood.server.db import epoch_now
from classmood.server.deps import CurrentAdmin, CurrentUser, SessionDep, StateDep
from classmood.server.errors import Invalid
from classmood.server.sessions.service import get_session
from classmood.server.validation import DurationQuery, EpochQuery

router = APIRouter(prefix="/api", tags=["analytics"])


def time_window(since: EpochQuery = None, until: EpochQuery = None, participant_id: int | None = None,
                last_s: Annotated[DurationQuery, Query(description="only the last N seconds")] = None) -> Window:
    """Parse ``since``, ``until``, ``participant_id`` and ``last_s`` (which narrows ``since``).

    Times and durations out of :mod:`classmood.server.validation`'s range are refused (422) before any cell or
    database arithmetic sees them.
    """
    if last_s is not None:
        since = max(since or 0.0, epoch_now() - last_s)
    if since is not None and until is not None and until <= since:
        raise Invalid("until must be after since")
    return Window(since, until, participant_id)


def policy(state: StateDep) -> Policy:
    """The server's aggregate-only policy."""
    settings = state.settings
    return Policy(min_faces=settings.min_faces, cell_s=settings.private_cell_s, seal_s=settings.private_seal_s)


WindowDep = Annotated[Window, Depends(time_window)]
PolicyDep = Annotated[Policy, Depends(policy)]
SmoothQuery = Annotated[float | None, Query(
    gt=0, le=MAX_SMOOTH_WINDOW_S, allow_inf_nan=False,
    description="count each participant once, by the mean of their readings of the last N s before their newest")]


@router.get("/sessions/{session_id}/histogram", response_model=HistogramOut)
def session_histogram(session_id: int, window: WindowDep, db: SessionDep, user: CurrentUser,
                      rules: PolicyDep, smooth_s: SmoothQuery = None) -> HistogramOut:
    """Observations per emotion in a session (suppressed below the aggregate-only threshold); with ``smooth_s``,
    participants per emotion of their reading steadied over that many seconds."""
    session = get_session(db, user=user, session_id=session_id)
    return service.session_histogram(db, session=session, window=window, policy=rules, smooth_s=smooth_s)


@router.get("/sessions/{session_id}/timeline", response_model=TimelineOut)
def session_timeline(session_id: int, window: WindowDep, db: SessionDep, user: CurrentUser, rules: PolicyDep,
                     bucket_s: Annotated[float, Query(ge=1, le=86_400)] = 60) -> TimelineOut:
    """Counts per time bucket from the start of the session (empty buckets as zeros)."""
    session = get_session(db, user=user, session_id=session_id)
    return service.session_timeline(db, session=session, window=window, bucket_s=bucket_s, policy=rules)


@router.get("/sessions/{session_id}/participants", response_model=list[ParticipantOut])
def session_participants(session_id: int, window: WindowDep, db: SessionDep, user: CurrentUser,
                         state: StateDep) -> list[ParticipantOut]:
    """Per participant: observations, last emotion, steadied emotion and counts (403 in aggregate-only mode)."""
    session = get_session(db, user=user, session_id=session_id)
    return service.session_participants(db, session=session, window=window,
                                        smooth_s=state.settings.smooth_window_s)


@router.get("/sessions/{session_id}/export.csv", response_class=StreamingResponse)
def session_export(session_id: int, window: WindowDep, db: SessionDep, user: CurrentUser,
                   state: StateDep) -> StreamingResponse:
    """Every observation of the session as CSV, one row each (403 in aggregate-only mode)."""
    session = get_session(db, user=user, session_id=session_id)
    chunks = service.session_export(state.sessions, session=session, window=window)
    headers = {"Content-Disposition": f'attachment; filename="classmood-session-{session.id}.csv"'}
    return StreamingResponse(chunks, media_type="text/csv", headers=headers)


@router.get("/courses/{course_id}/histogram", response_model=HistogramOut)
def course_histogram(course_id: int, window: WindowDep, db: SessionDep, user: CurrentUser,
                     rules: PolicyDep) -> HistogramOut:
    """Observations per emotion over all sessions of a course."""
    return service.course_histogram(db, user=user, course_id=course_id, window=window, policy=rules)


@router.get("/teachers/{teacher_id}/histogram", response_model=HistogramOut)
def teacher_histogram(teacher_id: int, window: WindowDep, db: SessionDep, user: CurrentUser,
                      rules: PolicyDep) -> HistogramOut:
    """Observations per emotion over all courses of a teacher (that teacher or an admin)."""
    return service.teacher_histogram(db, user=user, teacher_id=teacher_id, window=window, policy=rules)


@router.get("/platform/histogram", response_model=HistogramOut)
def platform_histogram(window: WindowDep, db: SessionDep, _admin: CurrentAdmin, rules: PolicyDep) -> HistogramOut:
    """Observations per emotion on the whole platform (admins)."""
    return service.platform_histogram(db, window=window, policy=rules)


@router.get("/platform/overview", response_model=OverviewOut)
def platform_overview(window: WindowDep, db: SessionDep, _admin: CurrentAdmin, rules: PolicyDep,
                      utc_offset_s: Annotated[int, Query(ge=-14 * 3600, le=14 * 3600)] = 0) -> OverviewOut:
    """Figures per course, per teacher and per hour of the day (UTC + ``utc_offset_s``) (admins)."""
    return service.platform_overview(db, window=window, utc_offset_s=utc_offset_s, policy=rules)
