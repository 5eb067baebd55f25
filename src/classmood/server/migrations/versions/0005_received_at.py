"""Aggregate-only figures in sealed cells: observations.received_at, aggregate_cells and aggregate_seals.

``received_at`` is when each row was stored, by the database's clock; aggregate-only figures are sums of sealed
cells of arrival time (see :mod:`classmood.server.analytics.release`), written once into ``aggregate_cells``.
Rows from before this revision arrived when they were seen, as far as anyone can tell: they get their own time.

Revision ID: 0005_received_at
Revises: 0004_analysis_mode
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from classmood.labels import LABELS
from classmood.server.db import epoch_now_sql

revision = "0005_received_at"
down_revision = "0004_analysis_mode"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("observations") as batch:
        batch.add_column(sa.Column("received_at", sa.Float(), nullable=True, server_default=epoch_now_sql()))
    op.execute("UPDATE observations SET received_at = ts WHERE received_at IS NULL")
    op.create_index("ix_observations_session_received", "observations", ["session_id", "received_at"])
    figures = [sa.Column(f"{kind}_{label.lower()}", sa.Integer(), nullable=False)
               for kind in ("n", "m") for label in LABELS]
    op.create_table(
        "aggregate_cells",
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("cell_s", sa.Integer(), nullable=False),
        sa.Column("cell", sa.BigInteger(), nullable=False),
        sa.Column("participants", sa.Integer(), nullable=False),
        *figures,
        sa.ForeignKeyConstraint(["session_id"], ["class_sessions.id"], ondelete="CASCADE",
                                name=op.f("fk_aggregate_cells_session_id_class_sessions")),
        sa.PrimaryKeyConstraint("session_id", "cell_s", "cell", name=op.f("pk_aggregate_cells")),
    )
    op.create_table(
        "aggregate_seals",
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("cell_s", sa.Integer(), nullable=False),
        sa.Column("until_cell", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["class_sessions.id"], ondelete="CASCADE",
                                name=op.f("fk_aggregate_seals_session_id_class_sessions")),
        sa.PrimaryKeyConstraint("session_id", "cell_s", name=op.f("pk_aggregate_seals")),
    )


def downgrade() -> None:
    op.drop_table("aggregate_seals")
    op.drop_table("aggregate_cells")
    op.drop_index("ix_observations_session_received", table_name="observations")
    with op.batch_alter_table("observations") as batch:
        batch.drop_column("received_at")
