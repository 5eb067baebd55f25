"""HTTP routes of the faces-in-view feature (the course's teacher, or an admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from classmood.server.analytics.router import PolicyDep, WindowDep
from classmood.server.deps import CurrentUser, SessionDep
from classmood.server.faces import service
from classmood.server.faces.schemas import PresenceOut
from classmood.server.sessions.service import get_session

router = APIRouter(prefix="/api", tags=["faces"])


@router.get("/sessions/{session_id}/presence")
def session_presence(session_id: int, window: WindowDep, db: SessionDep, user: CurrentUser, rules: PolicyDep,
                     bucket_s: Annotated[float, Query(ge=1, le=86_400)] = 60) -> PresenceOut:
    """Per time bucket: students present (any sample) and faces in view (a face seen)."""
    session = get_session(db, user=user, session_id=session_id)
    return service.session_presence(db, session=session, window=window, bucket_s=bucket_s, policy=rules)
