"""Students present and faces in view per time bucket, counted by the database.

Per bucket, ``present`` is the number of distinct students with any sample (an observation, which is a face
seen, or a no-face sample) and ``faces_in_view`` the number with a face. An identified session buckets by
the samples' times. An aggregate-only session follows its cell rules (:mod:`classmood.server.analytics.release`):
buckets are whole cells of arrival time, shown only once every cell in them is sealed (rows land in the cell
open when they arrive, so a sealed bucket's head counts cannot change), and a bucket with fewer than
``min_faces`` students present is withheld.
"""

from __future__ import annotations

import math

from sqlalchemy import ColumnElement, CompoundSelect, Select, func, select, union
from sqlalchemy.orm import Session

from classmood.server.analytics.release import Release
from classmood.server.analytics.service import Policy, Window, timeline_range
from classmood.server.analytics.sql import bucket_index
from classmood.server.db import as_utc, epoch_now_sql
from classmood.server.errors import Invalid
from classmood.server.faces.models import NoFaceSample
from classmood.server.faces.schemas import PresenceBucket, PresenceOut
from classmood.server.observations.models import Observation
from classmood.server.sessions.models import ClassSession

MAX_BUCKETS = 10_000
Table = type[Observation] | type[NoFaceSample]


def _rows(table: Table, session_id: int, clock: ColumnElement[float], bucket_s: float,
          window: Window) -> Select[int, int]:
    query = select(bucket_index(clock, bucket_s).label("b"), table.participant_id.label("p")).where(
        table.session_id == session_id)
    if window.since is not None:
        query = query.where(clock >= window.since)
    if window.until is not None:
        query = query.where(clock < window.until)
    return query


def _distinct_per_bucket(db: Session, query: Select[int, int] | CompoundSelect[int, int]) -> dict[int, int]:
    sub = query.subquery()
    rows = db.execute(select(sub.c.b, func.count(func.distinct(sub.c.p))).group_by(sub.c.b))
    return {int(b): int(n) for b, n in rows}


def head_counts(db: Session, *, session_id: int, bucket_s: float, window: Window,
                by_arrival: bool = False) -> tuple[dict[int, int], dict[int, int]]:
    """Per bucket index: distinct students with any sample, and with a face (by ``ts``, or by arrival: then the
    window is one of arrival times too)."""
    def clock(table: Table) -> ColumnElement[float]:
        return table.received_at if by_arrival else table.ts  # type: ignore[return-value]

    faces = _rows(Observation, session_id, clock(Observation), bucket_s, window)
    anything = union(faces, _rows(NoFaceSample, session_id, clock(NoFaceSample), bucket_s, window))
    return _distinct_per_bucket(db, anything), _distinct_per_bucket(db, faces)


def _sealed_before(db: Session, session: ClassSession, release: Release) -> float:
    """Epoch seconds before which every cell of the session is sealed (by the database's clock)."""
    now = float(db.scalar(select(epoch_now_sql())) or 0.0)
    ended = as_utc(session.ended_at)
    cell = release.sealed_until(now=now, status=session.status, ended_at=ended.timestamp() if ended else None)
    return float(cell * release.cell_s)


def session_presence(db: Session, *, session: ClassSession, window: Window, bucket_s: float,
                     policy: Policy) -> PresenceOut:
    """``GET /presence``: students present and faces in view per bucket, empty buckets as zeros."""
    private = session.private
    if private:
        # Whole buckets of whole cells by arrival: a range cannot cut a cell's head count into smaller groups.
        bucket_s = policy.release.bucket(bucket_s)
        window = Window(since=None if window.since is None else math.floor(window.since / bucket_s) * bucket_s,
                        until=None if window.until is None else math.ceil(window.until / bucket_s) * bucket_s)
    present, faces = head_counts(db, session_id=session.id, bucket_s=bucket_s, window=window, by_arrival=private)
    lo, hi = timeline_range(session, window)
    keys = list(present) + [int(v // bucket_s) for v in (lo, hi) if v is not None]
    if not keys:
        return PresenceOut(bucket_s=bucket_s, buckets=[])
    first, last = min(keys), max(keys)
    if last - first + 1 > MAX_BUCKETS:
        raise Invalid(f"more than {MAX_BUCKETS} buckets; choose a larger bucket_s or a shorter range")
    sealed = _sealed_before(db, session, policy.release) if private else float("inf")
    buckets = []
    for k in range(first, last + 1):
        n, f = present.get(k, 0), faces.get(k, 0)
        hidden = private and ((k + 1) * bucket_s > sealed or n < policy.min_faces)
        buckets.append(PresenceBucket(start=k * bucket_s, present=None if hidden else n,
                                      faces_in_view=None if hidden else f, suppressed=hidden))
    return PresenceOut(bucket_s=bucket_s, buckets=buckets)


def range_presence(db: Session, *, session: ClassSession, since: float, until: float | None) -> tuple[int, int] | None:
    """Distinct students present and with a face in view in ``[since, until)``; ``None`` for aggregate-only."""
    if session.private:
        return None
    # One bucket wider than any epoch time holds the whole range.
    present, faces = head_counts(db, session_id=session.id, bucket_s=1e12, window=Window(since=since, until=until))
    return sum(present.values()), sum(faces.values())
