"""SQL pieces that must read the same on SQLite and PostgreSQL.

``bucket_index(ts, width)`` is ``floor(ts / width)`` as an integer. PostgreSQL has ``floor``;
SQLite may be built without math functions, but there ``CAST(x AS INTEGER)`` truncates, which is
the floor for the positive epoch times ClassMood stores (ingestion refuses ts <= 0).

>>> from sqlalchemy import column
>>> from sqlalchemy.dialects import postgresql, sqlite
>>> expr = bucket_index(column("ts"), 60)  # the operand is parenthesised: ts + 3600 stays whole
>>> str(expr.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
'CAST((ts) / 60 AS INTEGER)'
>>> str(expr.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
'CAST(floor((ts) / 60) AS BIGINT)'
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, literal
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement


class bucket_index(FunctionElement[int]):
    """``floor(ts / width)`` as a BIGINT on every dialect."""

    type = BigInteger()
    inherit_cache = True
    name = "bucket_index"

    def __init__(self, ts: Any, width: float | int) -> None:
        super().__init__(ts, literal(width))


@compiles(bucket_index)
def _bucket_default(element: bucket_index, compiler: Any, **kw: Any) -> str:
    ts, width = list(element.clauses)
    return f"CAST(floor(({compiler.process(ts, **kw)}) / {compiler.process(width, **kw)}) AS BIGINT)"


@compiles(bucket_index, "sqlite")
def _bucket_sqlite(element: bucket_index, compiler: Any, **kw: Any) -> str:
    ts, width = list(element.clauses)
    return f"CAST(({compiler.process(ts, **kw)}) / {compiler.process(width, **kw)} AS INTEGER)"


def upsert_insert(db: Session, table: type[Any]) -> Any:
    """An INSERT of the session's dialect, which has ``on_conflict_do_nothing`` (PostgreSQL's or SQLite's)."""
    dialect = db.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
