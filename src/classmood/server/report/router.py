"""HTTP route of the PDF report (the course's teacher, or an admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from classmood.server.analytics.router import PolicyDep
from classmood.server.deps import CurrentUser, SessionDep
from classmood.server.report.pdf import read_report, render_pdf
from classmood.server.sessions.service import get_session

router = APIRouter(prefix="/api", tags=["report"])


@router.get("/sessions/{session_id}/report.pdf", response_class=Response)
def report_pdf(session_id: int, db: SessionDep, user: CurrentUser, rules: PolicyDep,
               utc_offset_s: Annotated[int, Query(ge=-14 * 3600, le=14 * 3600)] = 0) -> Response:
    """The session's report as a PDF: summary, topic table, charts and alerts (times in UTC + ``utc_offset_s``)."""
    # A plain def: FastAPI runs it in its thread pool, so drawing the charts never blocks the event loop.
    session = get_session(db, user=user, session_id=session_id)
    body = render_pdf(read_report(db, session=session, policy=rules, utc_offset_s=utc_offset_s))
    headers = {"Content-Disposition": f'attachment; filename="classmood-session-{session.id}-report.pdf"'}
    return Response(body, media_type="application/pdf", headers=headers)
