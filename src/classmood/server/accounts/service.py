"""Accounts: creating users and checking passwords. Data functions take keyword arguments."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from classmood.server.accounts.models import ROLES, User
from classmood.server.accounts.schemas import normalise_email
from classmood.server.errors import Conflict, Invalid
from classmood.server.security import Passwords


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
