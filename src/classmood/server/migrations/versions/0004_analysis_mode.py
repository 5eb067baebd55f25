"""Per-session analysis mode: class_sessions.analysis_mode ('device' or 'server') and allow_server_fallback.

Sessions from before this revision were analysed on the server, so existing rows get 'server'; new sessions
take the server's CLASSMOOD_ANALYSIS_MODE (on the student's device by default), which the ORM always sets.

Revision ID: 0004_analysis_mode
Revises: 0003_login_sessions
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_analysis_mode"
down_revision = "0003_login_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("class_sessions") as batch:
        batch.add_column(sa.Column("analysis_mode", sa.String(16), nullable=False, server_default="server"))
        batch.add_column(sa.Column("allow_server_fallback", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.create_check_constraint(op.f("ck_class_sessions_analysis_mode"), "analysis_mode IN ('device', 'server')")


def downgrade() -> None:
    with op.batch_alter_table("class_sessions") as batch:
        batch.drop_constraint(op.f("ck_class_sessions_analysis_mode"), type_="check")
        batch.drop_column("allow_server_fallback")
        batch.drop_column("analysis_mode")
