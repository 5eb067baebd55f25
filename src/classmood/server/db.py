"""Database engine, session factory and migrations (Alembic scripts live in ``server/migrations``).

SQLite files run in WAL mode with foreign keys on; PostgreSQL is reached through psycopg 3.

>>> engine = make_engine("sqlite://")
>>> engine.dialect.name
'sqlite'
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Float, MetaData, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.sql.functions import FunctionElement

from classmood.config import Settings

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

# Stable constraint names, so that migrations can refer to them on every dialect.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every ClassMood table."""

    metadata = MetaData(naming_convention=NAMING)


def utcnow() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)


def epoch_now() -> float:
    """The current time in UTC epoch seconds (the unit of observation timestamps)."""
    return time.time()


class epoch_now_sql(FunctionElement[float]):
    """The database's current time in epoch seconds, on every dialect: the default of
    ``observations.received_at`` and the clock of the aggregate-only seal (analytics.release), the one clock
    every server process shares."""

    type = Float()
    inherit_cache = True
    name = "epoch_now_sql"


@compiles(epoch_now_sql)
def _epoch_default(element: epoch_now_sql, compiler: Any, **kw: Any) -> str:
    return "CAST(extract(epoch from now()) AS DOUBLE PRECISION)"


@compiles(epoch_now_sql, "sqlite")
def _epoch_sqlite(element: epoch_now_sql, compiler: Any, **kw: Any) -> str:
    # julianday() has sub-millisecond precision and exists in every SQLite build (unixepoch() needs 3.38).
    return "((julianday('now') - 2440587.5) * 86400.0)"


def as_utc(value: datetime | None) -> datetime | None:
    """Attach UTC to the naive datetimes SQLite hands back (PostgreSQL's are aware already)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the dashboard read while students write; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for a SQLite or PostgreSQL URL (``postgresql://`` is routed to psycopg 3)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(parsed, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit (routes serialise them afterwards)."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def open_database(settings: Settings, *, migrate: bool = True) -> Iterator[Session]:
    """A session on the settings' database, migrated first; the engine is disposed afterwards.

    >>> # with open_database(load_settings()) as db:
    >>> #     db.scalar(select(func.count()).select_from(User))
    """
    engine = make_engine(settings.database_url)
    try:
        if migrate:
            upgrade(engine)
        with make_session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


def import_models() -> MetaData:
    """Import every feature's tables so that :data:`Base.metadata` is complete, and return it."""
    from classmood.server.accounts import models as _accounts  # noqa: F401
    from classmood.server.alerts import models as _alerts  # noqa: F401
    from classmood.server.analytics import models as _analytics  # noqa: F401
    from classmood.server.courses import models as _courses  # noqa: F401
    from classmood.server.faces import models as _faces  # noqa: F401
    from classmood.server.observations import models as _observations  # noqa: F401
    from classmood.server.sessions import models as _sessions  # noqa: F401
    from classmood.server.topics import models as _topics  # noqa: F401

    return Base.metadata


def alembic_config(url: str | None = None) -> Any:
    """An Alembic ``Config`` pointing at the migrations inside the package (no alembic.ini needed)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (default: the newest) with Alembic."""
    from alembic import command

    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def head_revision() -> str:
    """The newest revision of the migrations shipped in the package."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations in {MIGRATIONS_DIR}")
    return head


def current_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at (``None`` when it was never migrated)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
