"""Tables of the topics feature: the lesson topics a teacher marks in a session."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from classmood.server.db import Base, utcnow


class LessonTopic(Base):
    """A topic of a session from ``start`` (epoch seconds) to the next topic's start or the session's end.

    Only the start is stored: topics tile the session from their starts, so moving one moves the boundary
    between two and no gap or overlap can arise.
    """

    __tablename__ = "lesson_topics"
    __table_args__ = (UniqueConstraint("session_id", "start"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("class_sessions.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    start: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
