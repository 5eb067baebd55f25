"""Tables of the analytics feature: the sealed cells that aggregate-only figures are sums of.

A cell is written once, when it is sealed (:mod:`.release`), from the observations that arrived in it, and is
never changed afterwards: what an aggregate-only session shows cannot move, whatever arrives later.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from classmood.labels import LABELS
from classmood.server.db import Base

# Per emotion: observations (n_angry ...) and participants counted by the mean of their readings (m_angry ...).
COUNT_COLUMNS: tuple[str, ...] = tuple(f"n_{label.lower()}" for label in LABELS)
STEADY_COLUMNS: tuple[str, ...] = tuple(f"m_{label.lower()}" for label in LABELS)


class AggregateCell(Base):
    """The figures of one sealed cell of one aggregate-only session (``cell`` = floor(arrival / cell_s))."""

    __tablename__ = "aggregate_cells"

    session_id: Mapped[int] = mapped_column(ForeignKey("class_sessions.id", ondelete="CASCADE"), primary_key=True)
    cell_s: Mapped[int] = mapped_column(Integer, primary_key=True)
    cell: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    participants: Mapped[int] = mapped_column(Integer)
    n_angry: Mapped[int] = mapped_column(Integer)
    n_disgust: Mapped[int] = mapped_column(Integer)
    n_fear: Mapped[int] = mapped_column(Integer)
    n_happy: Mapped[int] = mapped_column(Integer)
    n_neutral: Mapped[int] = mapped_column(Integer)
    n_sad: Mapped[int] = mapped_column(Integer)
    n_surprise: Mapped[int] = mapped_column(Integer)
    m_angry: Mapped[int] = mapped_column(Integer)
    m_disgust: Mapped[int] = mapped_column(Integer)
    m_fear: Mapped[int] = mapped_column(Integer)
    m_happy: Mapped[int] = mapped_column(Integer)
    m_neutral: Mapped[int] = mapped_column(Integer)
    m_sad: Mapped[int] = mapped_column(Integer)
    m_surprise: Mapped[int] = mapped_column(Integer)


class AggregateSeal(Base):
    """How far a session's cells of one width are sealed: every cell below ``until_cell`` is in the table."""

    __tablename__ = "aggregate_seals"

    session_id: Mapped[int] = mapped_column(ForeignKey("class_sessions.id", ondelete="CASCADE"), primary_key=True)
    cell_s: Mapped[int] = mapped_column(Integer, primary_key=True)
    until_cell: Mapped[int] = mapped_column(BigInteger)
