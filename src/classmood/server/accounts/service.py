"""Accounts: creating users, checking passwords (throttled), and logins (browser and API) recorded server-side.

Data functions take keyword arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from classmood.server.accounts.models import ROLES, LoginSession, User
from classmood.server.accounts.schemas import normalise_email
from classmood.server.accounts.throttle import LoginThrottle
from classmood.server.db import as_utc, utcnow
from classmood.server.errors import Conflict, Invalid, RateLimited, Unauthorized
from classmood.server.security import Passwords, new_login_id


def create_user(db: Session, *, passwords: Passwords, email: str, password: str, name: str,
                role: str = "teacher") -> User:
    """Create a user; 409 if the e-mail is taken.

    >>> # create_user(db, passwords=Passwords(), email="t@x.org", password="s3cret!!", name="T")
    """
    if role not in ROLES:
        raise Invalid(f"role must be one of {', '.join(ROLES)}")
    if len(password) < 8:
        raise Invalid("passwords need at least 8 characters")
    try:
        email = normalise_email(email)
    except ValueError as exc:
        raise Invalid(str(exc)) from exc
    user = User(email=email, name=name.strip(), role=role, password_hash=passwords.hash(password))
    db.add(user)
    try:
        db.commit()
    except IntegrityError as exc:
        db.rollback()
        raise Conflict(f"a user with e-mail {email} exists already") from exc
    return user


def authenticate(db: Session, *, passwords: Passwords, email: str, password: str) -> User | None:
    """The active user with this e-mail and password, or ``None``."""
    user = db.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        passwords.dummy_verify()
        return None
    if not user.is_active or not passwords.verify(user.password_hash, password):
        return None
    return user


def login(db: Session, *, passwords: Passwords, throttle: LoginThrottle, email: str, password: str,
          address: str) -> User:
    """The user with these credentials; 429 while throttled (see :mod:`.throttle`), 401 if wrong.

    The attempt is reserved from the throttle's buckets before the password is checked, so a throttled
    attempt costs neither an argon2 verification nor a guess, and parallel attempts cannot overtake the count.
    """
    account = email.strip().lower()
    wait = throttle.begin(account=account, address=address)
    if wait > 0:
        raise RateLimited(f"too many failed logins; try again in {max(1.0, wait):.0f} s", retry_after_s=wait)
    user = authenticate(db, passwords=passwords, email=account, password=password)
    if user is None:
        raise Unauthorized("wrong e-mail or password")  # the reserved attempt stays taken: it was a failure
    throttle.succeeded(account=account, address=address)
    return user


def start_login(db: Session, *, user: User, ttl_s: int) -> str:
    """Record a login of ``user`` for ``ttl_s`` seconds; return its id (it goes in the cookie or the token).

    Expired logins are deleted on the way, so the table holds only live ones.
    """
    now = utcnow()
    db.execute(delete(LoginSession).where(LoginSession.expires_at < now))
    login_id = new_login_id()
    db.add(LoginSession(id=login_id, user_id=user.id, created_at=now, expires_at=now + timedelta(seconds=ttl_s)))
    db.commit()
    return login_id


def end_login(db: Session, *, login_id: str) -> None:
    """Log out: the login's cookie or bearer token is never honoured again."""
    db.execute(delete(LoginSession).where(LoginSession.id == login_id))
    db.commit()


def end_all_logins(db: Session, *, user_id: int) -> int:
    """End every login of a user (browser and API); return how many. For a password change or a disabled
    account: each cookie and token of the user is refused from the next request on."""
    ended = db.scalars(delete(LoginSession).where(LoginSession.user_id == user_id).returning(LoginSession.id)).all()
    db.commit()
    return len(ended)


def user_of_login(db: Session, *, login_id: str, user_id: object) -> User | None:
    """The active user of a live login (the check behind every API bearer token): one indexed query.

    ``None`` when the login was ended (logout), has expired, belongs to someone else, or the user is disabled.
    """
    if not login_id or not isinstance(user_id, int) or isinstance(user_id, bool):
        return None
    row = db.execute(select(User, LoginSession.expires_at).join(LoginSession, LoginSession.user_id == User.id)
                     .where(LoginSession.id == login_id, User.id == user_id)).first()
    if row is None:
        return None
    user, expires_at = row
    expires = as_utc(expires_at)
    return user if user.is_active and expires is not None and expires > utcnow() else None


class DatabaseLogins:
    """The :class:`~classmood.server.security.LoginRegistry` of a running server: the ``login_sessions`` table."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def is_active(self, login_id: str) -> bool:
        """True while the login's row exists and has not expired."""
        if not login_id:
            return False
        with self._sessions() as db:
            row = db.get(LoginSession, login_id)
            expires = as_utc(row.expires_at) if row is not None else None
        return expires is not None and expires > utcnow()


def count_users(db: Session) -> int:
    """How many users exist (zero on a fresh install)."""
    return db.scalar(select(func.count()).select_from(User)) or 0


def list_users(db: Session) -> list[User]:
    """All users, oldest first."""
    return list(db.scalars(select(User).order_by(User.id)))


DEMO_TEACHER_EMAIL = "teacher@classmood.local"
DEFAULT_ADMIN_EMAIL = "admin@classmood.local"


def bootstrap_users(db: Session, *, passwords: Passwords, admin_email: str = "", admin_password: str = "",
                    generate: Callable[[], str]) -> list[tuple[str, str, str]]:
    """On an empty database create an admin and a demo teacher; return their (role, e-mail, password).

    Nothing happens (``[]``) when any user exists, so restarts never add accounts.
    """
    if count_users(db):
        return []
    admin = (admin_email or DEFAULT_ADMIN_EMAIL, admin_password or generate())
    teacher = (DEMO_TEACHER_EMAIL, generate())
    create_user(db, passwords=passwords, email=admin[0], password=admin[1], name="Administrator", role="admin")
    create_user(db, passwords=passwords, email=teacher[0], password=teacher[1], name="Demo Teacher", role="teacher")
    return [("admin", *admin), ("teacher", *teacher)]
