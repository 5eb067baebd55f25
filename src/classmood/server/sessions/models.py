"""Tables of the sessions feature: class sessions and the participants who joined them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ColumnElement, DateTime, Float, ForeignKey, Integer, String, or_
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column

from classmood.server.db import Base, utcnow

STATUSES = ("scheduled", "live", "ended")
# Where the seven probabilities are computed: in the student's browser (frames never leave it) or on the server.
ANALYSIS_MODES = ("device", "server")


class ClassSession(Base):
    """One lesson of a course; students join it with ``code`` while it is scheduled or live."""

    __tablename__ = "class_sessions"
    __table_args__ = (CheckConstraint("status IN ('scheduled', 'live', 'ended')", name="status"),
                      CheckConstraint("analysis_mode IN ('device', 'server')", name="analysis_mode"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    code: Mapped[str] = mapped_column(String(16), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    scheduled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    aggregate_only: Mapped[bool] = mapped_column(Boolean, default=False)
    # Set for good once observations are stored while aggregate_only is on: students consented under it,
    # so switching aggregate_only off later must not expose that data per participant.
    aggregate_locked: Mapped[bool] = mapped_column(Boolean, default=False)
    show_self_to_students: Mapped[bool] = mapped_column(Boolean, default=True)
    frame_interval_s: Mapped[float] = mapped_column(Float, default=1.0)
    analysis_mode: Mapped[str] = mapped_column(String(16), default="device")
    # In device mode: whether a browser that cannot run the model may send frames to the server instead.
    allow_server_fallback: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The alert rule (classmood.server.alerts); NULL: the server's CLASSMOOD_ALERT_NEGATIVE_SHARE / _AFTER_S.
    alert_negative_share: Mapped[float | None] = mapped_column(Float)
    alert_after_s: Mapped[float | None] = mapped_column(Float)

    @hybrid_property
    def private(self) -> bool:
        """Whether the aggregate-only rules apply: the mode is on, or data was gathered under it."""
        return bool(self.aggregate_only or self.aggregate_locked)

    @private.inplace.expression
    @classmethod
    def _private_expression(cls) -> ColumnElement[bool]:
        return or_(cls.aggregate_only.is_(True), cls.aggregate_locked.is_(True))

    @property
    def accepts_frames(self) -> bool:
        """Whether the frames endpoints analyse pictures for this session (server mode, or an allowed fallback)."""
        return self.analysis_mode == "server" or bool(self.allow_server_fallback)


class Participant(Base):
    """A student in one session, known only by the display name they typed and their consent."""

    __tablename__ = "participants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("class_sessions.id", ondelete="CASCADE"), index=True)
    display_name: Mapped[str] = mapped_column(String(80))
    consent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    joined_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Epoch seconds of the last frame or batch, for the dashboard's "present" count.
    last_seen: Mapped[float | None] = mapped_column(Float)
