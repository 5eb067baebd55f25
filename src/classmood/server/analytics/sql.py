"""SQL pieces that must read the same on SQLite and PostgreSQL.

``epoch_now_sql()`` is the database's clock in epoch seconds, the default of ``observations.received_at``:
the one clock every server process shares, so a cell's seal (:mod:`.release`) means the same in all of them.

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

from sqlalchemy import BigInteger, Float, literal
from sqlalchemy.ext.compiler import compiles
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


class epoch_now_sql(FunctionElement[float]):
    """The database's current time in epoch seconds (a float), on every dialect."""

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
