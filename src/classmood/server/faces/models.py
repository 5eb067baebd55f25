"""Tables of the faces-in-view feature: the samples in which a student's camera saw no face."""

from __future__ import annotations

import uuid

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from classmood.server.db import Base, epoch_now_sql


class NoFaceSample(Base):
    """A time at which a student's device (or the server, analysing their frame) found no face.

    Not an observation: it carries no probabilities and counts in no emotion figure, only in "students present"
    (with the observations, which are the samples with a face). ``client_id`` is unique per participant, so a
    re-sent sample is stored once; ``received_at`` places it in aggregate-only cells by arrival, as observations.
    """

    __tablename__ = "no_face_samples"
    __table_args__ = (
        Index("uq_no_face_samples_participant_client", "participant_id", "client_id", unique=True),
        Index("ix_no_face_samples_session_ts", "session_id", "ts", "participant_id"),
        Index("ix_no_face_samples_session_received", "session_id", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("class_sessions.id", ondelete="CASCADE"))
    participant_id: Mapped[int] = mapped_column(ForeignKey("participants.id", ondelete="CASCADE"))
    client_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    ts: Mapped[float] = mapped_column(Float)
    received_at: Mapped[float | None] = mapped_column(Float, server_default=epoch_now_sql())
