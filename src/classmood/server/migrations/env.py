"""Alembic environment: runs on the connection handed over by :func:`classmood.server.db.upgrade`,
or on ``sqlalchemy.url`` when Alembic is driven from its own command line."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from classmood.server.db import import_models, make_engine

config = context.config
target_metadata = import_models()


def run_online() -> None:
    """Migrate on the given connection (or a fresh engine for ``sqlalchemy.url``)."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as fresh:
        _migrate(fresh)
    engine.dispose()


def _migrate(connection: Connection) -> None:
    # render_as_batch: SQLite cannot ALTER most things, so future migrations rebuild tables there.
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True,
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("ClassMood migrations run online only: use `classmood db upgrade`")
run_online()
