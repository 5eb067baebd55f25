"""Initial schema: users, courses, class sessions, participants, observations.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("role IN ('admin', 'teacher')", name=op.f("ck_users_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "courses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("teacher_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["teacher_id"], ["users.id"], name=op.f("fk_courses_teacher_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_courses")),
    )
    with op.batch_alter_table("courses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_courses_teacher_id"), ["teacher_id"], unique=False)

    op.create_table(
        "class_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("aggregate_only", sa.Boolean(), nullable=False),
        sa.Column("show_self_to_students", sa.Boolean(), nullable=False),
        sa.Column("frame_interval_s", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('scheduled', 'live', 'ended')", name=op.f("ck_class_sessions_status")),
        sa.ForeignKeyConstraint(
            ["course_id"], ["courses.id"], name=op.f("fk_class_sessions_course_id_courses"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_class_sessions")),
        sa.UniqueConstraint("code", name=op.f("uq_class_sessions_code")),
    )
    with op.batch_alter_table("class_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_class_sessions_course_id"), ["course_id"], unique=False)

    op.create_table(
        "participants",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("display_name", sa.String(length=80), nullable=False),
        sa.Column("consent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["class_sessions.id"],
            name=op.f("fk_participants_session_id_class_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_participants")),
    )
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_participants_session_id"), ["session_id"], unique=False)

    op.create_table(
        "observations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("label", sa.SmallInteger(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("p_angry", sa.Float(), nullable=False),
        sa.Column("p_disgust", sa.Float(), nullable=False),
        sa.Column("p_fear", sa.Float(), nullable=False),
        sa.Column("p_happy", sa.Float(), nullable=False),
        sa.Column("p_neutral", sa.Float(), nullable=False),
        sa.Column("p_sad", sa.Float(), nullable=False),
        sa.Column("p_surprise", sa.Float(), nullable=False),
        sa.CheckConstraint("source IN ('frame', 'device')", name=op.f("ck_observations_source")),
        sa.CheckConstraint("label >= 0 AND label < 7", name=op.f("ck_observations_label")),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participants.id"],
            name=op.f("fk_observations_participant_id_participants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["class_sessions.id"],
            name=op.f("fk_observations_session_id_class_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_observations")),
    )
    with op.batch_alter_table("observations", schema=None) as batch_op:
        batch_op.create_index("ix_observations_participant_ts", ["participant_id", "ts"], unique=False)
        batch_op.create_index(
            "ix_observations_session_ts", ["session_id", "ts", "label", "participant_id"], unique=False
        )
        batch_op.create_index("uq_observations_participant_client", ["participant_id", "client_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("observations", schema=None) as batch_op:
        batch_op.drop_index("uq_observations_participant_client")
        batch_op.drop_index("ix_observations_session_ts")
        batch_op.drop_index("ix_observations_participant_ts")

    op.drop_table("observations")
    with op.batch_alter_table("participants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_participants_session_id"))

    op.drop_table("participants")
    with op.batch_alter_table("class_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_class_sessions_course_id"))

    op.drop_table("class_sessions")
    with op.batch_alter_table("courses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_courses_teacher_id"))

    op.drop_table("courses")
    op.drop_table("users")
