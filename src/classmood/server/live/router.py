"""Server-sent events for the live dashboard: observations, presence and status of one session.

The caller's right to watch is checked when the stream opens and again every ``live_check_s`` (a setting):
the stream ends (after an ``end`` event saying why) once its login is logged out or expires, its account is
disabled, or it no longer manages the session's course, so a kept-open dashboard never outlives its login.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from classmood.server.deps import CurrentUser, SessionDep, StateDep, current_user, get_principal
from classmood.server.errors import DomainError, database_outage
from classmood.server.live.presence import REFRESH_EVERY_S
from classmood.server.sessions.models import ClassSession
from classmood.server.sessions.service import get_session
from classmood.server.state import ServerState

router = APIRouter(prefix="/api", tags=["live"])
KEEPALIVE_EVERY_S = 15.0
EVENTS_PER_WRITE = 500
WRITE_EVERY_S = 0.05  # a busy class's events go out together, one write per tick


def sse(event: str, data: dict[str, Any]) -> str:
    """One server-sent event in wire format.

    >>> sse("status", {"status": "live"})
    'event: status\\ndata: {"status": "live"}\\n\\n'
    """
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def _owned_session(session_id: int, db: SessionDep, user: CurrentUser) -> ClassSession:
    return get_session(db, user=user, session_id=session_id)


async def _presence(state: ServerState, session: ClassSession) -> str:
    """The presence event; a comment instead while the database is down (live events need none: stay open)."""
    try:
        counts = await to_thread.run_sync(state.presence.counts, session.id, session.frame_interval_s)
    except Exception as exc:
        if database_outage(exc) is None:
            raise
        return ": presence unavailable, the database is down\n\n"
    return sse("presence", counts)


def revoked(request: Request, state: ServerState, session_id: int) -> DomainError | None:
    """Why the caller of ``request`` may no longer watch the session (as the request would be refused now), or
    ``None``: the login (cookie or bearer token) is checked again, as are the user and the course."""
    try:
        with state.sessions() as db:
            get_session(db, user=current_user(get_principal(request, db, state)), session_id=session_id)
    except DomainError as exc:
        return exc
    except Exception as exc:
        if database_outage(exc) is None:
            raise
        return None  # the database is down for now: the stream stays open, and the next check asks again
    return None


async def _events(request: Request, state: ServerState, session: ClassSession) -> AsyncIterator[str]:
    async with state.broker.subscribe(session.id) as subscription:
        yield "retry: 3000\n\n"
        yield sse("status", {"status": session.status})
        yield await _presence(state, session)
        # A revoked dashboard stops at most one check period plus one wait for events after its right ended.
        check_every = state.settings.live_check_s
        last_presence = last_sent = last_check = time.monotonic()
        while not await request.is_disconnected():
            if time.monotonic() - last_check >= check_every:
                refused = await to_thread.run_sync(revoked, request, state, session.id)
                if refused is not None:
                    yield sse("end", {"status": refused.status, "detail": refused.detail})
                    return
                last_check = time.monotonic()
            # Every queued event in one write: a busy class sends hundreds a second, and one write (one loop
            # turn) each made the dashboard fall behind the students.
            events = await subscription.get_many(timeout=min(1.0, check_every), limit=EVENTS_PER_WRITE)
            now = time.monotonic()
            if events:
                # Publishers leave out observation events of aggregate-only sessions (checked per frame).
                yield "".join(sse(event.event, event.data) for event in events)
                last_sent = now
                # Let the next ones gather: woken per event, 2,000 students' scores a second cost the server a
                # loop turn, a disconnect check and a socket write each; a tick's wait costs the dashboard 50 ms.
                await asyncio.sleep(WRITE_EVERY_S)
            if now - last_presence >= REFRESH_EVERY_S:
                yield await _presence(state, session)
                last_presence = last_sent = now
            elif now - last_sent >= KEEPALIVE_EVERY_S:
                yield ": keep-alive\n\n"
                last_sent = now


@router.get("/sessions/{session_id}/live")
async def live(request: Request, state: StateDep, db: SessionDep,
               session: Annotated[ClassSession, Depends(_owned_session)]) -> StreamingResponse:
    """Server-sent events of a session: ``observation``, ``presence`` and ``status``."""
    # The stream holds no database connection: held for hours it would pin one pool connection per dashboard,
    # and a database restart would break its teardown after the response has started.
    await to_thread.run_sync(db.close)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(_events(request, state, session), media_type="text/event-stream", headers=headers)
