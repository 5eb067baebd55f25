"""HTTP routes of the alerts feature (the course's teacher, or an admin)."""

from __future__ import annotations

from fastapi import APIRouter

from classmood.server.alerts import service
from classmood.server.alerts.schemas import AlertOut
from classmood.server.deps import CurrentUser, SessionDep
from classmood.server.sessions.service import get_session

router = APIRouter(prefix="/api", tags=["alerts"])


@router.get("/sessions/{session_id}/alerts")
def list_alerts(session_id: int, db: SessionDep, user: CurrentUser) -> list[AlertOut]:
    """The session's alerts, oldest first: when each fired and the figures then."""
    session = get_session(db, user=user, session_id=session_id)
    return service.list_alerts(db, session=session)
