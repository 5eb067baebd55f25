"""Alerts that last: the session's alert rule, its firings and the episode being watched (issue 22).

Revision ID: 0010_session_alerts
Revises: 0009_no_face_samples
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_session_alerts"
down_revision = "0009_no_face_samples"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("class_sessions") as batch:
        batch.add_column(sa.Column("alert_negative_share", sa.Float(), nullable=True))
        batch.add_column(sa.Column("alert_after_s", sa.Float(), nullable=True))
    op.create_table(
        "session_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("since", sa.Float(), nullable=False),
        sa.Column("fired_at", sa.Float(), nullable=False),
        sa.Column("negative_share", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("after_s", sa.Float(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("participants", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["class_sessions.id"], ondelete="CASCADE",
                                name=op.f("fk_session_alerts_session_id_class_sessions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_alerts")),
        sa.UniqueConstraint("session_id", "since", name=op.f("uq_session_alerts_session_id")),
    )
    op.create_index(op.f("ix_session_alerts_session_id"), "session_alerts", ["session_id"])
    op.create_table(
        "alert_episodes",
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("high_since", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["session_id"], ["class_sessions.id"], ondelete="CASCADE",
                                name=op.f("fk_alert_episodes_session_id_class_sessions")),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_alert_episodes")),
    )


def downgrade() -> None:
    op.drop_table("alert_episodes")
    op.drop_index(op.f("ix_session_alerts_session_id"), table_name="session_alerts")
    op.drop_table("session_alerts")
    with op.batch_alter_table("class_sessions") as batch:
        batch.drop_column("alert_after_s")
        batch.drop_column("alert_negative_share")
