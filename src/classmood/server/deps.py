"""FastAPI dependencies: the server state, database sessions and who is calling.

Routes declare what they need with the ``Annotated`` aliases below (``SessionDep``,
``CurrentUser``, ``CurrentAdmin``, ``CurrentParticipant``), in the style of
fastapi/full-stack-fastapi-template.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from anyio import to_thread
from fastapi import Depends
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from classmood.config import Settings
from classmood.server.accounts.models import User
from classmood.server.accounts.service import user_of_login
from classmood.server.errors import Forbidden, Unauthorized, database_outage
from classmood.server.security import (
    CSRF_HEADER,
    SESSION_COOKIE,
    UNSAFE_METHODS,
    csrf_ok,
    read_login,
)
from classmood.server.sessions.models import Participant
from classmood.server.state import ServerState


def get_state(conn: HTTPConnection) -> ServerState:
    """The app's shared state (works for HTTP requests and WebSockets)."""
    state: ServerState = conn.app.state.cm
    return state


async def state_dep(conn: HTTPConnection) -> ServerState:
    """:func:`get_state` as a dependency; async because FastAPI runs a sync one in a worker thread."""
    return get_state(conn)


StateDep = Annotated[ServerState, Depends(state_dep)]


async def get_settings(state: StateDep) -> Settings:
    """The app's settings."""
    return state.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_db(state: StateDep) -> Iterator[Session]:
    """A database session for one request, closed afterwards."""
    session = state.sessions()
    try:
        yield session
    finally:
        _close(session)


def _close(session: Session) -> None:
    # Closing rolls back on the connection; when the database went away after the answer was sent (a restart),
    # that fails, and the answer cannot change any more: the pool drops the dead connection, nothing else to do.
    try:
        session.close()
    except Exception as exc:
        if database_outage(exc) is None:
            raise


SessionDep = Annotated[Session, Depends(get_db)]


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user (by cookie or bearer token), a participant (by their token), or nobody."""

    user: User | None = None
    participant: Participant | None = None
    via_cookie: bool = False


def bearer_token(conn: HTTPConnection) -> str | None:
    """The token of an ``Authorization: Bearer`` header, or ``None``."""
    header = conn.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def principal_from_token(db: Session, state: ServerState, token: str) -> Principal:
    """Resolve a bearer token: an API user token or a participant token.

    An API token names its login (``sid``, a ``login_sessions`` row) and is honoured only while that row
    lives: logging out with it, or ending all of the user's logins, revokes it at the next request. The
    check is the query that loads the user anyway (users joined to login_sessions by primary key), so it
    costs no extra round trip. Tokens without ``sid`` (issued before tokens were revocable) are refused.

    Participant tokens stay stateless: each is scoped to one participant of one session, the participant
    row is looked up here, and ingestion refuses every score once the session has ended.
    """
    payload = state.signer.verify("api", token)
    if payload is not None:
        user = user_of_login(db, login_id=str(payload.get("sid") or ""), user_id=payload.get("uid"))
        if user is None:
            raise Unauthorized("this token was revoked (logged out) or its account is disabled; log in again")
        return Principal(user=user)
    payload = state.signer.verify("participant", token)
    if payload is not None:
        participant = db.get(Participant, payload.get("pid"))
        if participant is None or participant.session_id != payload.get("sid"):
            raise Unauthorized("this participant token is no longer valid")
        return Principal(participant=participant)
    raise Unauthorized("invalid or expired token")


def get_principal(conn: HTTPConnection, db: SessionDep, state: StateDep) -> Principal:
    """Identify the caller from ``Authorization: Bearer`` or the login cookie (with CSRF check)."""
    token = bearer_token(conn)
    if token:
        return principal_from_token(db, state, token)
    login = read_login(state.signer, conn.cookies.get(SESSION_COOKIE))
    if login is None:
        return Principal()
    user = db.get(User, login.user_id)
    if user is None or not user.is_active:
        return Principal()
    method = conn.scope.get("method", "GET")
    if method in UNSAFE_METHODS and not csrf_ok(login, conn.headers.get(CSRF_HEADER)):
        raise Forbidden(f"missing or wrong {CSRF_HEADER} header")
    return Principal(user=user, via_cookie=True)


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def current_user(principal: PrincipalDep) -> User:
    """The logged-in admin or teacher (401 for nobody, 403 for a participant token)."""
    if principal.user is not None:
        return principal.user
    if principal.participant is not None:
        raise Forbidden("participant tokens are accepted only by the participant endpoints")
    raise Unauthorized("log in or send a bearer token")


CurrentUser = Annotated[User, Depends(current_user)]


def current_admin(user: CurrentUser) -> User:
    """The logged-in admin (403 for teachers)."""
    if user.role != "admin":
        raise Forbidden("administrators only")
    return user


CurrentAdmin = Annotated[User, Depends(current_admin)]


def participant_of(principal: Principal) -> Participant:
    """The participant whose token was sent (401 for nobody, 403 for a user)."""
    if principal.participant is not None:
        return principal.participant
    if principal.user is not None:
        raise Forbidden("this endpoint takes a participant token (from POST /api/join)")
    raise Unauthorized("send the participant token from POST /api/join")


async def current_participant(principal: PrincipalDep) -> Participant:
    """The participant whose token was sent (401 for nobody, 403 for a user).

    Async on purpose: it does no I/O, and a sync dependency would wait for a worker thread while the request
    holds the database connection of its token check; under load those waits exhaust the pool (deadlock).
    """
    return participant_of(principal)


def _resolve_participant(conn: HTTPConnection, state: ServerState) -> Participant:
    with state.sessions() as db:
        return participant_of(get_principal(conn, db, state))


async def cached_participant(conn: HTTPConnection, state: StateDep) -> Participant:
    """:func:`current_participant` for the device-batch path, without a query per request.

    Students send a batch every second or so; the token's signature (and expiry) is checked each time, the
    participant row only every ``ParticipantCache.TTL_S`` (see :class:`~classmood.server.sessions.cache.
    ParticipantCache` for why that is safe).
    """
    token = bearer_token(conn)
    now = time.monotonic()
    hit = state.participants.get(token, now=now) if token else None
    if hit is not None and state.signer.verify("participant", token) is not None:
        return hit
    participant = await to_thread.run_sync(_resolve_participant, conn, state)
    if token:
        state.participants.put(token, participant, now=now)
    return participant


CurrentParticipant = Annotated[Participant, Depends(current_participant)]
CachedParticipant = Annotated[Participant, Depends(cached_participant)]
