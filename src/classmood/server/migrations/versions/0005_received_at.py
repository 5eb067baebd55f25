"""observations.received_at: when each row was stored, by the database's clock.

Aggregate-only figures are sums of sealed cells of arrival time (see :mod:`classmood.server.analytics.release`).
Rows from before this revision get NULL and count by their own time.

Revision ID: 0005_received_at
Revises: 0004_analysis_mode
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from classmood.server.analytics.sql import epoch_now_sql

revision = "0005_received_at"
down_revision = "0004_analysis_mode"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("observations") as batch:
        batch.add_column(sa.Column("received_at", sa.Float(), nullable=True, server_default=epoch_now_sql()))


def downgrade() -> None:
    with op.batch_alter_table("observations") as batch:
        batch.drop_column("received_at")
