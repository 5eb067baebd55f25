"""Faces in view: no_face_samples, the samples in which a student's camera saw no face (issue 22).

Revision ID: 0009_no_face_samples
Revises: 0008_lesson_topics
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from classmood.server.db import epoch_now_sql

revision = "0009_no_face_samples"
down_revision = "0008_lesson_topics"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "no_face_samples",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("received_at", sa.Float(), nullable=True, server_default=epoch_now_sql()),
        sa.ForeignKeyConstraint(["session_id"], ["class_sessions.id"], ondelete="CASCADE",
                                name=op.f("fk_no_face_samples_session_id_class_sessions")),
        sa.ForeignKeyConstraint(["participant_id"], ["participants.id"], ondelete="CASCADE",
                                name=op.f("fk_no_face_samples_participant_id_participants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_no_face_samples")),
    )
    op.create_index("uq_no_face_samples_participant_client", "no_face_samples", ["participant_id", "client_id"],
                    unique=True)
    op.create_index("ix_no_face_samples_session_ts", "no_face_samples", ["session_id", "ts", "participant_id"])
    op.create_index("ix_no_face_samples_session_received", "no_face_samples", ["session_id", "received_at"])


def downgrade() -> None:
    op.drop_table("no_face_samples")
