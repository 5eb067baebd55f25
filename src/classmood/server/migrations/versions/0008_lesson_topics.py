"""Lesson topics: a title and a start per topic of a session (issue 22).

Revision ID: 0008_lesson_topics
Revises: 0006_login_throttle
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_lesson_topics"
down_revision = "0006_login_throttle"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lesson_topics",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("start", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["class_sessions.id"], ondelete="CASCADE",
                                name=op.f("fk_lesson_topics_session_id_class_sessions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lesson_topics")),
        sa.UniqueConstraint("session_id", "start", name=op.f("uq_lesson_topics_session_id")),
    )
    op.create_index(op.f("ix_lesson_topics_session_id"), "lesson_topics", ["session_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_lesson_topics_session_id"), table_name="lesson_topics")
    op.drop_table("lesson_topics")
