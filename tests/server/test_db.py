"""Migrations, dialect settings and the portable SQL pieces, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import column, inspect, select, text

from classmood.server.analytics.sql import bucket_index
from classmood.server.db import current_revision, head_revision, import_models, make_engine, upgrade


def test_migrations_build_exactly_the_models(empty_database_url: str) -> None:
    engine = make_engine(empty_database_url)
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), import_models())
    assert diff == []
    upgrade(engine)  # a second run is a no-op
    engine.dispose()


def test_observation_indexes(empty_database_url: str) -> None:
    engine = make_engine(empty_database_url)
    upgrade(engine)
    indexes = {ix["name"]: ix for ix in inspect(engine).get_indexes("observations")}
    assert indexes["ix_observations_session_ts"]["column_names"][:2] == ["session_id", "ts"]
    assert indexes["ix_observations_participant_ts"]["column_names"] == ["participant_id", "ts"]
    assert indexes["uq_observations_participant_client"]["unique"]
    engine.dispose()


def test_sqlite_runs_wal_with_foreign_keys(tmp_path: Any) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


def test_bucket_index_is_floor_on_both_dialects(database_url: str) -> None:
    engine = make_engine(database_url)
    values = [0.5, 59.999, 60.0, 61.0, 1_700_000_123.25]
    ts = column("ts")
    with engine.connect() as conn:
        for value in values:
            row = conn.execute(select(bucket_index(text(f"CAST({value} AS FLOAT)"), 60))).scalar()  # type: ignore[arg-type]
            assert row == int(value // 60), value
        assert str(bucket_index(ts, 60).compile(engine)).count("/") == 1
    engine.dispose()
