"""Aggregate-only is a one-way door: class_sessions.aggregate_locked.

Sessions that already gathered data under aggregate-only (live or ended with the mode on) are locked.

Revision ID: 0002_aggregate_lock
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_aggregate_lock"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("class_sessions") as batch:
        batch.add_column(sa.Column("aggregate_locked", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute("UPDATE class_sessions SET aggregate_locked = aggregate_only WHERE status <> 'scheduled'")


def downgrade() -> None:
    with op.batch_alter_table("class_sessions") as batch:
        batch.drop_column("aggregate_locked")
