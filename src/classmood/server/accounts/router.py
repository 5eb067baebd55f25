"""HTTP routes of the accounts feature: login, logout, tokens, the current caller, users."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from classmood.server.accounts import service
from classmood.server.accounts.models import User
from classmood.server.accounts.schemas import Credentials, LoginOut, TokenOut, UserCreate, UserPublic
from classmood.server.accounts.throttle import throttle_of
from classmood.server.deps import CurrentAdmin, PrincipalDep, SessionDep, StateDep, bearer_token
from classmood.server.errors import Forbidden, Unauthorized
from classmood.server.security import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE, csrf_ok, new_login, read_login
from classmood.server.sessions.schemas import ParticipantMe, ParticipantPublic

router = APIRouter(prefix="/api", tags=["accounts"])


def checked_credentials(body: Credentials, request: Request, db: SessionDep, state: StateDep) -> User:
    """The user of the posted credentials (401 wrong, 429 throttled: per account and address, per account
    for addresses that failed, per address). The address is the peer's, or a trusted proxy's forwarded one."""
    address = request.client.host if request.client else "unknown"
    return service.login(db, passwords=state.passwords, throttle=throttle_of(request.app), email=body.email,
                         password=body.password, address=address)


CheckedUser = Annotated[User, Depends(checked_credentials)]


@router.post("/auth/login")
def login(user: CheckedUser, response: Response, db: SessionDep, state: StateDep) -> LoginOut:
    """Log in a browser: sets the ``cm_session`` and ``cm_csrf`` cookies."""
    ttl = state.settings.session_ttl_s
    cookie, csrf = new_login(state.signer, user.id, ttl, service.start_login(db, user=user, ttl_s=ttl))
    secure = not state.settings.dev
    response.set_cookie(SESSION_COOKIE, cookie, max_age=ttl, httponly=True, samesite="lax", secure=secure)
    # Readable by the page's JS, which echoes it in X-CSRF-Token.
    response.set_cookie(CSRF_COOKIE, csrf, max_age=ttl, httponly=False, samesite="lax", secure=secure)
    return LoginOut(user=UserPublic.model_validate(user), csrf_token=csrf)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(request: Request, response: Response, db: SessionDep, state: StateDep) -> None:
    """Log out: ends the login on the server and clears the cookies.

    A browser's login is the one of its ``cm_session`` cookie; an API client's is the one of the bearer token
    sent (``Authorization: Bearer``). Either is refused from then on; the user's other logins live on.
    Ending a cookie's login is an unsafe request like any other: it needs the ``X-CSRF-Token`` header (403
    without it), so another site cannot sign a teacher out. A bearer token needs none (no site can send it).
    """
    current = read_login(state.signer, request.cookies.get(SESSION_COOKIE))
    api = state.signer.verify("api", bearer_token(request))
    if current is not None and not csrf_ok(current, request.headers.get(CSRF_HEADER)):
        if api is None:
            raise Forbidden(f"missing or wrong {CSRF_HEADER} header")
        current = None  # a bearer token's logout leaves the browser's login alone
    if current is not None:
        service.end_login(db, login_id=current.login_id)
    if api is not None and api.get("sid"):
        service.end_login(db, login_id=str(api["sid"]))
    response.delete_cookie(SESSION_COOKIE)
    response.delete_cookie(CSRF_COOKIE)


@router.post("/auth/token")
def token(user: CheckedUser, db: SessionDep, state: StateDep) -> TokenOut:
    """Exchange e-mail and password for a bearer token (API clients; no CSRF needed).

    The token is a login recorded server-side, like a browser's: ``POST /api/auth/logout`` with it revokes it.
    """
    ttl = state.settings.token_ttl_s
    login_id = service.start_login(db, user=user, ttl_s=ttl)
    return TokenOut(access_token=state.signer.sign("api", {"uid": user.id, "sid": login_id}, ttl), expires_in=ttl)


@router.get("/me")
def me(principal: PrincipalDep) -> UserPublic | ParticipantMe:
    """The current user, or ``{participant: {...}}`` for a participant token."""
    if principal.user is not None:
        return UserPublic.model_validate(principal.user)
    if principal.participant is not None:
        return ParticipantMe(participant=ParticipantPublic.of(principal.participant))
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
