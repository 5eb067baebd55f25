"""HTTP routes of the per-student views (403 in aggregate-only sessions)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from classmood.server.analytics.router import PolicyDep, WindowDep
from classmood.server.analytics.schemas import TimelineOut
from classmood.server.deps import CurrentParticipant, CurrentUser, SessionDep
from classmood.server.sessions.service import get_session
from classmood.server.students import service
from classmood.server.students.schemas import CheckOnOut

router = APIRouter(prefix="/api", tags=["students"])
BucketQuery = Annotated[float, Query(ge=1, le=86_400)]


@router.get("/sessions/{session_id}/participants/{participant_id}/timeline")
def student_timeline(session_id: int, participant_id: int, window: WindowDep, db: SessionDep, user: CurrentUser,
                     rules: PolicyDep, bucket_s: BucketQuery = 60) -> TimelineOut:
    """One student's counts per time bucket (the session timeline's schema)."""
    session = get_session(db, user=user, session_id=session_id)
    return service.student_timeline(db, session=session, participant_id=participant_id, window=window,
                                    bucket_s=bucket_s, policy=rules)


@router.get("/sessions/{session_id}/check-on")
def check_on(session_id: int, db: SessionDep, user: CurrentUser,
             recent_s: Annotated[float, Query(ge=30, le=3600)] = service.CheckOnRule.recent_s) -> CheckOnOut:
    """Students whose negative share lately is well above their own earlier level (the rule comes along)."""
    session = get_session(db, user=user, session_id=session_id)
    return service.check_on(db, session=session, rule=service.CheckOnRule(recent_s=recent_s))


@router.get("/sessions/{session_id}/participants.csv", response_class=StreamingResponse)
def student_summary(session_id: int, db: SessionDep, user: CurrentUser) -> StreamingResponse:
    """One CSV row per student: observations, first and last time, negative share, top emotion, shares."""
    session = get_session(db, user=user, session_id=session_id)
    rows = list(service.student_summary_csv(db, session=session))
    headers = {"Content-Disposition": f'attachment; filename="classmood-session-{session.id}-students.csv"'}
    return StreamingResponse(iter(rows), media_type="text/csv", headers=headers)


@router.get("/me/timeline")
def own_timeline(db: SessionDep, participant: CurrentParticipant, rules: PolicyDep,
                 bucket_s: BucketQuery = 60) -> TimelineOut:
    """Your own counts per time bucket (participant token; not in aggregate-only sessions)."""
    return service.own_timeline(db, participant=participant, bucket_s=bucket_s, policy=rules)
