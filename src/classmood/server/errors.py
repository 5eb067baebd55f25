"""Domain errors raised by services, and the handlers that turn every refusal into its documented answer.

Services stay free of HTTP types, yet every refusal still reaches the client with the status
that docs/API.md promises: ``{"detail": "..."}``, except 422 whose ``detail`` is always a list of
``{loc, msg, type}`` (the shape FastAPI gives validation errors), whoever raised it.

>>> json_safe({"input": float("nan"), "name": chr(0xD800)})
{'input': 'nan', 'name': '\\\\ud800'}
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterator
from typing import Any

log = logging.getLogger(__name__)


class DomainError(Exception):
    """Base class: a request that cannot be honoured, with the HTTP status that says why."""

    status = 400

    def __init__(self, detail: str, *, loc: tuple[str, ...] = ("body",), retry_after_s: float | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.loc = loc
        self.retry_after_s = retry_after_s


class BadRequest(DomainError):
    """Malformed input (400)."""

    status = 400


class Unauthorized(DomainError):
    """No or wrong credentials (401)."""

    status = 401


class Forbidden(DomainError):
    """Authenticated but not allowed (403)."""

    status = 403


class NotFound(DomainError):
    """Unknown resource (404)."""

    status = 404


class Conflict(DomainError):
    """Conflicts with the current state, e.g. an ended session (409)."""

    status = 409


class TooLarge(DomainError):
    """Too many bytes, pixels or items (413)."""

    status = 413


class Unsupported(DomainError):
    """Not an image (415)."""

    status = 415


class Invalid(DomainError):
    """Well-formed but invalid values (422)."""

    status = 422


class RateLimited(DomainError):
    """Over a rate limit (429)."""

    status = 429


class Unavailable(DomainError):
    """Something the request needs is down for now, e.g. the database restarting or its disk full (503)."""

    status = 503


DB_RETRY_AFTER_S = 2.0  # a database restart takes seconds; clients back off from here
OUTAGE_LOG_EVERY_S = 10.0
# SQLSTATE classes of a database that is down for now rather than a request that is wrong: connection
# exception, insufficient resources (disk full, out of memory), operator intervention (shutdown), system error.
OUTAGE_SQLSTATES = ("08", "53", "57", "58")
SQLITE_OUTAGES = ("database or disk is full", "disk i/o error", "database is locked", "unable to open database")
DISK_FULL = ("disk is full", "disk full", "no space left", "could not extend file")


def database_outage(exc: BaseException) -> Unavailable | None:
    """The 503 answer of a database error that means "down for now", or ``None`` for any other error (a bug).

    Down for now: a lost or refused connection (server restarting), a pool with no connection to spare, a
    full disk, a locked SQLite file. What was committed before is unaffected, and the same request succeeds
    once the database is back (the pool's pre-ping replaces dead connections).
    """
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    if isinstance(exc, PoolTimeout):
        return Unavailable("the database is busy: try again in a moment", retry_after_s=DB_RETRY_AFTER_S)
    if not isinstance(exc, DBAPIError):
        return None
    text = str(exc.orig).lower()
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate:
        outage = str(sqlstate)[:2] in OUTAGE_SQLSTATES
    else:  # psycopg's connection failures and sqlite3's errors carry no SQLSTATE
        sqlite = type(exc.orig).__module__.startswith("sqlite3")
        outage = (exc.connection_invalidated or isinstance(exc, InterfaceError)
                  or (isinstance(exc, OperationalError) and (not sqlite or any(m in text for m in SQLITE_OUTAGES))))
    if not (outage or exc.connection_invalidated):
        return None
    if any(m in text for m in DISK_FULL):
        detail = "the database's disk is full: nothing new can be stored until space is freed (stored data is kept)"
    else:
        detail = "the database is unavailable for a moment (restarting?): try again shortly"
    return Unavailable(detail, retry_after_s=DB_RETRY_AFTER_S)


@contextlib.contextmanager
def outage_as_unavailable() -> Iterator[None]:
    """Turn a database outage raised inside into :class:`Unavailable` (for paths without the HTTP handler)."""
    try:
        yield
    except Exception as exc:
        mapped = database_outage(exc)
        if mapped is None:
            raise
        raise mapped from exc


ECHO_DEPTH = 8  # what a 422 echoes of a deeply nested input stops here (and never recurses without end)


def json_safe(value: Any, depth: int = 0) -> Any:
    """A copy of ``value`` that JSON can always encode as UTF-8: non-finite floats and lone surrogates
    become text, unknown objects their ``str``, and nesting beyond ``ECHO_DEPTH`` is cut to ``"..."``.
    Used on whatever a 422 answer echoes back."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, bool | int) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict | list | tuple) and depth >= ECHO_DEPTH:
        return "..."
    if isinstance(value, dict):
        return {str(json_safe(key, depth + 1)): json_safe(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item, depth + 1) for item in value]
    if isinstance(value, bytes):
        return json_safe(value.decode("utf-8", "replace"))
    return json_safe(str(value))


def validation_detail(errors: Any) -> list[dict[str, Any]]:
    """FastAPI's list of validation errors, made encodable (the echoed ``input`` may be NaN or a surrogate)."""
    out = []
    for error in errors:
        item = {key: error[key] for key in ("type", "loc", "msg", "input", "ctx") if key in error}
        out.append(json_safe(item))
    return out


def error_body(exc: DomainError) -> dict[str, Any]:
    """The JSON answer of a domain error: a list for 422 (as validation errors have), a string otherwise."""
    if exc.status == 422:
        return {"detail": [{"type": "value_error", "loc": list(exc.loc), "msg": json_safe(exc.detail)}]}
    return {"detail": json_safe(exc.detail)}


def error_headers(exc: DomainError) -> dict[str, str] | None:
    """``WWW-Authenticate`` on 401 and ``Retry-After`` (whole seconds, at least 1) when known."""
    headers: dict[str, str] = {}
    if exc.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if exc.retry_after_s is not None:
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
    return headers or None


def install_error_handlers(app: Any) -> None:
    """Register the handlers of domain errors and of request validation errors on a FastAPI app."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.requests import Request

    async def domain(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        return JSONResponse(error_body(exc), status_code=exc.status, headers=error_headers(exc))

    async def invalid(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return JSONResponse({"detail": validation_detail(exc.errors())}, status_code=422)

    warned = [-OUTAGE_LOG_EVERY_S]

    async def database(_request: Request, exc: Exception) -> JSONResponse:
        mapped = database_outage(exc)
        if mapped is None:
            raise exc  # a bug: the 500 it is
        now = time.monotonic()
        if now - warned[0] >= OUTAGE_LOG_EVERY_S:  # an outage answers thousands of requests: a line now and then
            warned[0] = now
            log.warning("answering 503: %s (%s)", mapped.detail, type(getattr(exc, "orig", exc)).__name__)
        return JSONResponse(error_body(mapped), status_code=mapped.status, headers=error_headers(mapped))

    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    app.add_exception_handler(DomainError, domain)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(DBAPIError, database)
    app.add_exception_handler(PoolTimeout, database)
