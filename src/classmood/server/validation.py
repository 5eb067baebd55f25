"""Input rules shared by every API shape and every path or query parameter.

Both databases must see the same thing, and neither may be handed what it cannot store:

- text never holds a NUL character (PostgreSQL refuses it, SQLite would store it) nor a lone
  surrogate (neither database can encode it as UTF-8);
- numbers are finite (JSON's ``NaN``, ``Infinity`` and ``1e400`` parse to non-finite floats);
- ids fit the 32-bit ``INTEGER`` columns they are compared with (PostgreSQL's ``integer`` is
  32-bit; SQLite's is 64-bit, but one rule for both keeps the answers identical);
- times (epoch seconds: ``since``, ``until``, ``ts``...) and durations (``last_s``) lie between the epoch and
  the last second of the year 9999 (:data:`TIME_MAX_S`): every database stores them, and the integer cell
  and bucket arithmetic of the analytics cannot overflow (``since=1e308`` or ``-inf`` once made a 500);
- a body holds only the fields its shape names (an unknown one is a 422, never silently dropped), and its
  booleans and numbers are JSON booleans and numbers (``0`` is not ``false``, ``"1"`` is not ``1``).

Request bodies get these rules from :class:`InputModel`; times from :data:`EpochSeconds` (bodies),
:data:`EpochQuery` and :data:`DurationQuery` (query parameters) and :func:`epoch_seconds` (hand-parsed
messages); other path and query parameters from the app-wide dependency :func:`check_parameters`.

>>> text_problem("Ada")
>>> text_problem("A\\x00B")
'must not contain NUL characters'
>>> [problem for _, problem in value_problems({"probs": [1.0, float("nan")]})]
['must be a finite number']
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, ClassVar

from fastapi import Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from starlette.requests import HTTPConnection

from classmood.server.db import as_utc
from classmood.server.errors import Invalid, NotFound

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
_SURROGATE = re.compile("[\ud800-\udfff]")
_INTEGER = re.compile(r"^[+-]?\d+$")


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text, or ``None`` when it can."""
    if "\x00" in value:
        return "must not contain NUL characters"
    if _SURROGATE.search(value):
        return "must be valid Unicode text (no lone surrogates)"
    return None


MAX_DEPTH = 16  # no ClassMood body nests more than 4 levels; deeper ones are refused, never walked


def value_problems(value: Any) -> Iterator[tuple[str, str]]:
    """(path, problem) for every string or number inside a parsed JSON value that no database can store.

    Walks with an explicit stack, so a deeply nested body cannot exhaust the interpreter's recursion.
    """
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                yield path or "value", problem
        elif isinstance(item, float):
            if not math.isfinite(item):
                yield path or "value", "must be a finite number"
        elif isinstance(item, dict | list | tuple) and depth >= MAX_DEPTH:
            yield path or "value", f"nests more than {MAX_DEPTH} levels"
        elif isinstance(item, dict):
            for key, child in item.items():
                where = f"{path}.{key!s}" if path else str(key)
                stack.extend(((key, where, depth + 1), (child, where, depth + 1)))
        elif isinstance(item, list | tuple):
            stack.extend((child, f"{path}[{index}]", depth + 1) for index, child in enumerate(item))


class InputModel(BaseModel):
    """Base of every request body: finite numbers and storable text, anywhere in the body; only known fields;
    strict types (a uuid or a time field that arrives as JSON text says ``Field(strict=False)``)."""

    model_config = ConfigDict(allow_inf_nan=False, extra="forbid", strict=True)
    # False for a body whose fields are all typed so that none can hold text a database cannot store (numbers,
    # which allow_inf_nan refuses unless finite, uuids, fixed keys): it skips the walk over every value.
    walk_values: ClassVar[bool] = True

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        if not cls.walk_values:
            return data
        for path, problem in value_problems(data):
            # backslashreplace keeps the message itself encodable when the culprit is a lone surrogate
            raise ValueError(f"{path.encode('utf-8', 'backslashreplace').decode()} {problem}")
        return data


def _non_blank(value: str) -> str:
    stripped = value.strip()
    if not stripped:
        raise ValueError("must not be blank")
    return stripped


def _one_line(value: str) -> str:
    return _non_blank(" ".join(value.split()))


# A title or a person's name: trimmed, never blank (whitespace alone is refused, not stored as "").
Title = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_non_blank)]
PersonName = Annotated[str, Field(min_length=1, max_length=120), AfterValidator(_one_line)]
# A stored time as the API shows it: always with its zone (SQLite hands back naive datetimes).
UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]

# The range of every time the API takes, in UTC epoch seconds: from the epoch to 9999-12-31T23:59:59Z, the
# last second a datetime can name. Within it, cell and bucket indexes stay far inside 64-bit integers and
# both databases store and compare the value; beyond it, a request is refused (422) before any arithmetic.
TIME_MIN_S, TIME_MAX_S = 0.0, 253_402_300_799.0
EpochSeconds = Annotated[float, Field(ge=TIME_MIN_S, le=TIME_MAX_S, allow_inf_nan=False,
                                      description="UTC epoch seconds")]
EpochQuery = Annotated[float | None, Query(ge=TIME_MIN_S, le=TIME_MAX_S, allow_inf_nan=False,
                                           description="UTC epoch seconds")]
DurationQuery = Annotated[float | None, Query(gt=0, le=TIME_MAX_S, allow_inf_nan=False)]
_EPOCH = TypeAdapter(EpochSeconds, config=ConfigDict(strict=True))


def epoch_seconds(value: object, name: str = "ts") -> float:
    """``value`` as a time of :data:`EpochSeconds` (for messages parsed by hand); :class:`Invalid` otherwise.

    >>> epoch_seconds(1.5e9)
    1500000000.0
    >>> epoch_seconds(1e308)
    Traceback (most recent call last):
    classmood.server.errors.Invalid: ts must be UTC epoch seconds between 0 and 253402300799
    """
    try:
        return float(_EPOCH.validate_python(value))
    except ValidationError as exc:
        raise Invalid(f"{name} must be UTC epoch seconds between {TIME_MIN_S:.0f} and {TIME_MAX_S:.0f}",
                      loc=("body", name)) from exc


def check_parameters(conn: HTTPConnection) -> None:
    """App-wide dependency: refuse path and query values that no database could compare with.

    A path id out of range names nothing (404); a query value out of range or holding NUL or a lone
    surrogate is invalid (422). Runs before the route touches the database.
    """
    if conn.scope.get("type") != "http":
        return
    for name, raw in conn.path_params.items():
        if not isinstance(raw, str):
            continue
        if text_problem(raw) or (name.endswith("_id") and not _in_int_range(raw)):
            raise NotFound(f"no such {name.removesuffix('_id') or 'resource'}")
    for name, raw in conn.query_params.multi_items():
        problem = text_problem(raw) or text_problem(name)
        if problem is None and name.endswith("_id") and not _in_int_range(raw):
            problem = f"must be between {INT32_MIN} and {INT32_MAX}"
        if problem:
            raise Invalid(f"query parameter {name.encode('utf-8', 'backslashreplace').decode()} {problem}",
                          loc=("query", name))


def _in_int_range(raw: str) -> bool:
    """True unless ``raw`` is an integer outside the 32-bit range (non-integers are the route's to refuse)."""
    text = raw.strip()
    if not _INTEGER.match(text):
        return True
    digits = text.lstrip("+-").lstrip("0")
    # Refuse by length first: int() of a 5,000-digit string is itself an error.
    return len(digits) <= 10 and INT32_MIN <= int(text) <= INT32_MAX
