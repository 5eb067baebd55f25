"""Tables of the observations feature: one row per face seen (or scored on a device) at a time."""

from __future__ import annotations

import uuid

from sqlalchemy import BigInteger, CheckConstraint, Float, ForeignKey, Index, Integer, SmallInteger, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from classmood.labels import LABELS
from classmood.server.db import Base, epoch_now_sql

# Column names of the seven probabilities, in LABELS order: p_angry, p_disgust, ...
PROB_COLUMNS: tuple[str, ...] = tuple(f"p_{label.lower()}" for label in LABELS)
SOURCES = ("frame", "device")


class Observation(Base):
    """Seven probabilities of one face at one time. ``label`` is the index of the top emotion in LABELS.

    ``client_id`` is unique per participant, which makes retried uploads idempotent. The
    ``(session_id, ts, label, participant_id)`` index starts with ``(session_id, ts)`` for time
    ranges and carries label and participant so histograms are answered from the index alone.
    """

    __tablename__ = "observations"
    __table_args__ = (
        Index("ix_observations_session_ts", "session_id", "ts", "label", "participant_id"),
        Index("ix_observations_participant_ts", "participant_id", "ts"),
        Index("ix_observations_session_received", "session_id", "received_at"),
        Index("uq_observations_participant_client", "participant_id", "client_id", unique=True),
        CheckConstraint("source IN ('frame', 'device')", name="source"),
        CheckConstraint("label >= 0 AND label < 7", name="label"),
    )

    # BIGINT on PostgreSQL for billions of rows; INTEGER on SQLite so that it aliases the rowid.
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("class_sessions.id", ondelete="CASCADE"))
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id", ondelete="CASCADE"))
    client_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    ts: Mapped[float] = mapped_column(Float)
    label: Mapped[int] = mapped_column(SmallInteger)
    score: Mapped[float | None] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(8))
    p_angry: Mapped[float] = mapped_column(Float)
    p_disgust: Mapped[float] = mapped_column(Float)
    p_fear: Mapped[float] = mapped_column(Float)
    p_happy: Mapped[float] = mapped_column(Float)
    p_neutral: Mapped[float] = mapped_column(Float)
    p_sad: Mapped[float] = mapped_column(Float)
    p_surprise: Mapped[float] = mapped_column(Float)
    # When the row was stored, by the database's clock: aggregate-only figures count rows in cells of their
    # arrival, so that a cell once sealed never changes (classmood.server.analytics.release). The
    # (session_id, received_at) index finds the rows of the cells being sealed.
    received_at: Mapped[float | None] = mapped_column(Float, server_default=epoch_now_sql())

    @property
    def probs(self) -> dict[str, float]:
        """The seven probabilities by emotion name."""
        return {label: getattr(self, column) for label, column in zip(LABELS, PROB_COLUMNS, strict=True)}

    @property
    def label_name(self) -> str:
        """The top emotion's name."""
        return LABELS[self.label]
