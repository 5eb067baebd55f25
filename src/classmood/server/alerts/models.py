"""Tables of the alerts feature: each firing of a session's rule, and the episode the rule is watching."""

from __future__ import annotations

from sqlalchemy import Float, ForeignKey, Integer, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from classmood.server.db import Base


class SessionAlert(Base):
    """One firing of a session's alert rule: when, since when the share was high, and the figures then.

    ``(session_id, since)`` is unique: every server process evaluating the same episode tries to insert the
    same row, and only the first one fires.
    """

    __tablename__ = "session_alerts"
    __table_args__ = (UniqueConstraint("session_id", "since"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("class_sessions.id", ondelete="CASCADE"), index=True)
    since: Mapped[float] = mapped_column(Float)
    fired_at: Mapped[float] = mapped_column(Float)
    negative_share: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    after_s: Mapped[float] = mapped_column(Float)
    total: Mapped[int] = mapped_column(Integer)
    participants: Mapped[int] = mapped_column(Integer)


class AlertEpisode(Base):
    """Since when a session's negative share has been at or above its threshold (NULL: it is below)."""

    __tablename__ = "alert_episodes"

    session_id: Mapped[int] = mapped_column(ForeignKey("class_sessions.id", ondelete="CASCADE"), primary_key=True)
    high_since: Mapped[float | None] = mapped_column(Float)
