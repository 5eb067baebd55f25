"""Failed-login throttling shared by every server process: one bucket row per account or address.

API bearer tokens become revocable too, but they reuse ``login_sessions`` (0003): no change there.

Revision ID: 0006_login_throttle
Revises: 0005_received_at
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_login_throttle"
down_revision = "0005_received_at"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(length=320), nullable=False),
        sa.Column("due", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_throttle")),
    )
    op.create_index(op.f("ix_login_throttle_due"), "login_throttle", ["due"])


def downgrade() -> None:
    op.drop_index(op.f("ix_login_throttle_due"), table_name="login_throttle")
    op.drop_table("login_throttle")
