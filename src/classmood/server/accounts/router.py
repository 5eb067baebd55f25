"""HTTP routes of the accounts feature: login, logout, tokens, the current caller, users."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status

from classmood.server.accounts import service
from classmood.server.accounts.schemas import Credentials, LoginOut, TokenOut, UserCreate, UserPublic
from classmood.server.deps import CurrentAdmin, PrincipalDep, SessionDep, StateDep
from classmood.server.errors import Unauthorized
from classmood.server.security import CSRF_COOKIE, SESSION_COOKIE, new_login
from classmood.server.sessions.schemas import participant_public

router = APIRouter(prefix="/api", tags=["accounts"])


@router.post("/auth/login")
def login(body: Credentials, response: Response, db: SessionDep, state: StateDep) -> LoginOut:
    """Log in a browser: sets the ``cm_session`` and ``cm_csrf`` cookies."""
    user = service.authenticate(db, passwords=state.passwords, email=body.email, password=body.password)
    if user is None:
        raise Unauthorized("wrong e-mail or password")
    ttl = state.settings.session_ttl_s
    cookie, csrf = new_login(state.signer, user.id, ttl)
    secure = not state.settings.dev
    response.set_cookie(SESSION_COOKIE, cookie, max_age=ttl, httponly=True, samesite="lax", secure=secure)
    # Readable by the page's JS, which echoes it in X-CSRF-Token.
    response.set_cookie(CSRF_COOKIE, csrf, max_age=ttl, httponly=False, samesite="lax", secure=secure)
    return LoginOut(user=UserPublic.model_validate(user), csrf_token=csrf)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(response: Response) -> None:
    """Log out a browser (clears the cookies)."""
    response.delete_cookie(SESSION_COOKIE)
    response.delete_cookie(CSRF_COOKIE)


@router.post("/auth/token")
def token(body: Credentials, db: SessionDep, state: StateDep) -> TokenOut:
    """Exchange e-mail and password for a bearer token (API clients; no CSRF needed)."""
    user = service.authenticate(db, passwords=state.passwords, email=body.email, password=body.password)
    if user is None:
        raise Unauthorized("wrong e-mail or password")
    ttl = state.settings.token_ttl_s
    return TokenOut(access_token=state.signer.sign("api", {"uid": user.id}, ttl), expires_in=ttl)


@router.get("/me")
def me(principal: PrincipalDep) -> dict[str, Any]:
    """The current user, or ``{participant: {...}}`` for a participant token."""
    if principal.user is not None:
        return UserPublic.model_validate(principal.user).model_dump()
    if principal.participant is not None:
        return {"participant": participant_public(principal.participant)}
    raise Unauthorized("log in or send a bearer token")


@router.post("/users", status_code=status.HTTP_201_CREATED)
def create_user(body: UserCreate, db: SessionDep, state: StateDep, _admin: CurrentAdmin) -> UserPublic:
    """Create a teacher or an admin (admins only)."""
    user = service.create_user(db, passwords=state.passwords, email=body.email, password=body.password,
                               name=body.name, role=body.role)
    return UserPublic.model_validate(user)


@router.get("/users")
def list_users(db: SessionDep, _admin: CurrentAdmin) -> list[UserPublic]:
    """All users (admins only)."""
    return [UserPublic.model_validate(u) for u in service.list_users(db)]
