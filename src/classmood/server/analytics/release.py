"""Which observations of aggregate-only sessions an answer may count: whole, sealed, big-enough time cells.

Exact counts over freely chosen ranges can be subtracted: "the whole session minus ``since=x``" or "the
timeline minus the histogram" would show the readings of a group smaller than ``min_faces``. So an
aggregate-only session's observations count only by fixed *cells*: ``cell_s``-second spans of their arrival
time (``received_at``, the database's clock), aligned to the epoch, and only in cells that are

- **sealed**: the cell ended ``seal_s`` ago, or the session is over. A row always lands in the cell that is
  open when it arrives, so a sealed cell never changes: a figure once shown stays as it was, and a student's
  late replay (an offline outbox) lands, counted, in a later cell instead of altering an old one. Cells by
  arrival also make a device's clock irrelevant;
- **big enough**: at least ``min_faces`` distinct participants among its rows.

Every answer that touches such a session (its histogram and timeline, course, teacher and platform totals,
the overview by course, teacher and hour of day) is a sum of released cells, and a time range takes every
released cell it overlaps. Any sum or difference of answers is therefore a sum of released cells, each
showing at least ``min_faces`` people: no subtraction narrows a figure below the minimum group.

>>> Release(cell_s=30, seal_s=10.0, min_faces=5).bucket(45)
60
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, tuple_

from classmood.server.analytics.sql import bucket_index, epoch_now_sql
from classmood.server.observations.models import Observation
from classmood.server.sessions.models import ClassSession


@dataclass(frozen=True)
class Release:
    """The cell rule of aggregate-only sessions."""

    cell_s: int
    seal_s: float
    min_faces: int

    @staticmethod
    def when() -> ColumnElement[float]:
        """The time by which an aggregate-only session's rows count: their arrival (rows stored before the
        revision that added ``received_at`` have only their own time)."""
        return func.coalesce(Observation.received_at, Observation.ts)

    def cell(self) -> ColumnElement[int]:
        """The cell index of each observation."""
        return bucket_index(self.when(), self.cell_s)

    def cell_start(self) -> ColumnElement[Any]:
        """Where each observation's cell begins (epoch s)."""
        return self.cell() * self.cell_s

    def bucket(self, bucket_s: float) -> int:
        """A timeline bucket width for an aggregate-only session: whole cells, at least ``bucket_s``."""
        return max(1, math.ceil(bucket_s / self.cell_s)) * self.cell_s

    def span(self, since: float | None, until: float | None) -> tuple[float | None, float | None]:
        """The observation times of every cell that ``[since, until)`` overlaps."""
        lo = None if since is None else math.floor(since / self.cell_s) * self.cell_s
        hi = None if until is None else math.ceil(until / self.cell_s) * self.cell_s
        return lo, hi


def private_session_ids() -> Select[int]:
    """Ids of the sessions under the aggregate-only rules."""
    return select(ClassSession.id).where(ClassSession.private)


def _seal(release: Release) -> ColumnElement[Any]:
    # The end of each row's cell plus a grace for transactions that began before the end and commit after it.
    return (release.cell() + 1) * release.cell_s + release.seal_s


def released_cells(release: Release, *, sessions: Select[int], since: float | None,
                   until: float | None) -> Select[int, int]:
    """(session id, cell) of the released cells of ``sessions`` (aggregate-only ones) overlapping the range.

    A cell's fate depends only on its own rows, never on the query asking: the same cells are released to
    every answer.
    """
    cell = release.cell()
    query = (select(Observation.session_id, cell)
             .join(ClassSession, ClassSession.id == Observation.session_id)
             .where(Observation.session_id.in_(sessions),
                    or_(ClassSession.status != "live", _seal(release) <= epoch_now_sql())))
    lo, hi = release.span(since, until)
    if lo is not None:
        query = query.where(release.when() >= lo)
    if hi is not None:
        query = query.where(release.when() < hi)
    people = func.count(func.distinct(Observation.participant_id))
    return query.group_by(Observation.session_id, cell).having(people >= release.min_faces)


def visible(release: Release, *, sessions: Select[int], since: float | None,
            until: float | None) -> ColumnElement[bool]:
    """The condition on observations of ``sessions`` (any mode) that an answer may count.

    Observations of sessions that are not aggregate-only count within ``[since, until)`` as they are; those of
    aggregate-only sessions only in the released cells that overlap the range.
    """
    private = private_session_ids()
    in_range = [Observation.ts >= since] if since is not None else []
    in_range += [Observation.ts < until] if until is not None else []
    public = and_(Observation.session_id.not_in(private), *in_range)
    cells = released_cells(release, sessions=sessions.where(ClassSession.id.in_(private)), since=since,
                           until=until)
    return or_(public, tuple_(Observation.session_id, release.cell()).in_(cells))
