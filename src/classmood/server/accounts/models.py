"""Tables of the accounts feature: platform users (admins and teachers), their logins, failed-login throttling."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, DateTime, Double, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from classmood.server.db import Base, utcnow

ROLES = ("admin", "teacher")


class User(Base):
    """A person who logs in: an ``admin`` (the whole platform) or a ``teacher`` (own courses)."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('admin', 'teacher')", name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LoginSession(Base):
    """One login: a browser's (its id travels in the signed ``cm_session`` cookie) or an API client's (in the
    bearer token). Logging out deletes the row, and the cookie or token is refused from then on."""

    __tablename__ = "login_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class LoginThrottleRow(Base):
    """The failed-login bucket of one account or one address, shared by every server process.

    ``due`` is the bucket's theoretical arrival time (GCRA, see ``accounts.throttle``) in epoch seconds; a row
    whose ``due`` has passed is a full bucket and is pruned.
    """

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(320), primary_key=True)
    due: Mapped[float] = mapped_column(Double, index=True)
