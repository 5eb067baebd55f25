"""Aggregate-only figures: sums of whole, sealed, big-enough time cells, written once.

Exact counts over freely chosen ranges can be subtracted: "the whole session minus ``since=x``" or "the
timeline minus the histogram" would show the readings of a group smaller than ``min_faces``. So an
aggregate-only session's observations count only by fixed *cells*: ``cell_s``-second spans of their arrival
time (``received_at``, the database's clock), aligned to the epoch, and only in cells that are

- **sealed**: the cell ended ``seal_s`` ago (a grace for transactions still committing), or the session is
  over. A row always lands in the cell that is open when it arrives, so a sealed cell is complete: it is
  written once into ``aggregate_cells`` and never changes. A figure once shown stays as it was, and a
  student's late replay (an offline outbox) lands, counted, in a later cell. Cells by arrival also make a
  device's clock irrelevant;
- **big enough**: at least ``min_faces`` distinct participants among its rows.

Every answer that touches such a session (its histogram and timeline, course, teacher and platform totals,
the overview by course, teacher and hour of day) adds up released cells, and a time range takes every
released cell it overlaps. Any sum or difference of answers is therefore a sum of released cells, each
showing at least ``min_faces`` people: no subtraction narrows a figure below the minimum group. Answers read
the small cell table, not the observations.

>>> Release(cell_s=30, seal_s=10.0, min_faces=5).bucket(45)
60
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from classmood.labels import LABELS, top_label
from classmood.server.analytics.models import COUNT_COLUMNS, STEADY_COLUMNS, AggregateCell, AggregateSeal
from classmood.server.analytics.sql import bucket_index
from classmood.server.courses.models import Course
from classmood.server.db import as_utc, epoch_now_sql
from classmood.server.observations.models import PROB_COLUMNS, Observation
from classmood.server.sessions.models import ClassSession


@dataclass(frozen=True)
class Release:
    """The cell rule of aggregate-only sessions."""

    cell_s: int
    seal_s: float
    min_faces: int

    def bucket(self, bucket_s: float) -> int:
        """A timeline bucket width for an aggregate-only session: whole cells, at least ``bucket_s``."""
        return max(1, math.ceil(bucket_s / self.cell_s)) * self.cell_s

    def cells(self, since: float | None, until: float | None) -> tuple[int | None, int | None]:
        """The first cell and the cell after the last that ``[since, until)`` overlaps."""
        first = None if since is None else math.floor(since / self.cell_s)
        end = None if until is None else math.ceil(until / self.cell_s)
        return first, end

    def sealed_until(self, *, now: float, status: str, ended_at: float | None) -> int:
        """The cell index below which every cell of a session is sealed at ``now``."""
        if status == "ended" and ended_at is not None and now >= ended_at + self.seal_s:
            return math.floor(ended_at / self.cell_s) + 1  # the session's last cell, cut short by its end
        return math.floor((now - self.seal_s) / self.cell_s)


def private_session_ids() -> Select[int]:
    """Ids of the sessions under the aggregate-only rules."""
    return select(ClassSession.id).where(ClassSession.private)


# --- sealing: each cell is computed once, from the observations that arrived in it --------------------------

def seal(db: Session, release: Release, sessions: Select[int]) -> None:
    """Write the newly sealed cells of the aggregate-only sessions among ``sessions``; commits if it wrote.

    Two processes sealing at once compute the same cells (a sealed cell's rows are all committed) and the
    second one's inserts are ignored.
    """
    seals = select(AggregateSeal.until_cell).where(AggregateSeal.session_id == ClassSession.id,
                                                   AggregateSeal.cell_s == release.cell_s).scalar_subquery()
    # The database's clock comes with the sessions (one round trip on every aggregate-only answer).
    rows = db.execute(select(ClassSession.id, ClassSession.status, ClassSession.ended_at, seals, epoch_now_sql())
                      .where(ClassSession.private, ClassSession.id.in_(sessions))).all()
    wrote = False
    for session_id, status, ended_at, done, now in rows:
        ended = as_utc(ended_at)
        target = release.sealed_until(now=float(now), status=status,
                                      ended_at=ended.timestamp() if ended else None)
        if done is None or done < target:
            _write_cells(db, release, session_id, done, target)
            wrote = True
    if wrote:
        db.commit()


def _arrival_cell(release: Release) -> ColumnElement[int]:
    return bucket_index(Observation.received_at, release.cell_s)


def _write_cells(db: Session, release: Release, session_id: int, first: int | None, end: int) -> None:
    cell = _arrival_cell(release)
    means = [func.avg(getattr(Observation, column)) for column in PROB_COLUMNS]
    per_label = [func.sum(case((Observation.label == k, 1), else_=0)) for k in range(len(LABELS))]
    query = (select(cell, Observation.participant_id, *per_label, *means)
             .where(Observation.session_id == session_id, Observation.received_at < end * release.cell_s))
    if first is not None:
        query = query.where(Observation.received_at >= first * release.cell_s)
    cells: dict[int, dict[str, int]] = {}
    for row in db.execute(query.group_by(cell, Observation.participant_id)):
        figures = cells.setdefault(int(row[0]), _empty_figures())
        figures["participants"] += 1
        for column, n in zip(COUNT_COLUMNS, row[2:2 + len(LABELS)], strict=True):
            figures[column] += int(n or 0)
        steady = top_label(tuple(float(p) for p in row[2 + len(LABELS):]))
        figures[STEADY_COLUMNS[steady]] += 1
    values = [{"session_id": session_id, "cell_s": release.cell_s, "cell": k, **figures}
              for k, figures in cells.items()]
    if values:
        db.execute(_insert(db, AggregateCell).on_conflict_do_nothing(), values)
    _advance(db, release, session_id, first, end)


def _advance(db: Session, release: Release, session_id: int, first: int | None, end: int) -> None:
    if first is None:
        db.execute(_insert(db, AggregateSeal).on_conflict_do_nothing(),
                   [{"session_id": session_id, "cell_s": release.cell_s, "until_cell": end}])
    db.execute(update(AggregateSeal).where(AggregateSeal.session_id == session_id,
                                           AggregateSeal.cell_s == release.cell_s, AggregateSeal.until_cell < end)
               .values(until_cell=end))


def _empty_figures() -> dict[str, int]:
    return {"participants": 0, **dict.fromkeys(COUNT_COLUMNS, 0), **dict.fromkeys(STEADY_COLUMNS, 0)}


def _insert(db: Session, table: type[AggregateCell] | type[AggregateSeal]) -> Any:
    dialect = db.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


# --- reading: sums of released cells ----------------------------------------------------------------------

@dataclass(frozen=True)
class CellSums:
    """Per label: observations (or, steadied, participant-cells) of released cells; the most participants of
    one of them (the people any figure stands for: at least ``min_faces``)."""

    counts: dict[str, int]
    participants: int


def _released(release: Release, sessions: Select[int], since: float | None,
              until: float | None) -> list[ColumnElement[bool]]:
    first, end = release.cells(since, until)
    where = [AggregateCell.session_id.in_(sessions), AggregateCell.cell_s == release.cell_s,
             AggregateCell.participants >= release.min_faces]
    if first is not None:
        where.append(AggregateCell.cell >= first)
    if end is not None:
        where.append(AggregateCell.cell < end)
    return where


def _columns(steady: bool) -> Sequence[str]:
    return STEADY_COLUMNS if steady else COUNT_COLUMNS


def _figures(columns: Sequence[str]) -> list[ColumnElement[Any]]:
    """The largest head count of the cells, then the sum of each of ``columns``: what :func:`_sums` reads."""
    return [func.max(AggregateCell.participants), *(func.sum(getattr(AggregateCell, c)) for c in columns)]


def _sums(rows: Iterable[Sequence[Any]]) -> CellSums:
    counts, people = dict.fromkeys(LABELS, 0), 0
    for row in rows:
        people = max(people, int(row[0] or 0))
        for label, n in zip(LABELS, row[1:], strict=True):
            counts[label] += int(n or 0)
    return CellSums(counts, people)


def cell_sums(db: Session, release: Release, *, sessions: Select[int], since: float | None, until: float | None,
              steady: bool = False) -> CellSums:
    """The released cells of ``sessions`` overlapping ``[since, until)``, added up."""
    query = select(*_figures(_columns(steady))).where(*_released(release, sessions, since, until))
    return _sums(db.execute(query))


def cell_buckets(db: Session, release: Release, *, session_id: int, bucket_s: int, since: float | None,
                 until: float | None) -> dict[int, CellSums]:
    """Released cells of one session added up per ``bucket_s``-second bucket (a multiple of the cell)."""
    per = bucket_s // release.cell_s
    bucket = bucket_index(AggregateCell.cell, per)
    query = (select(bucket, *_figures(COUNT_COLUMNS))
             .where(*_released(release, select(ClassSession.id).where(ClassSession.id == session_id), since, until))
             .group_by(bucket))
    return {int(row[0]): _sums([row[1:]]) for row in db.execute(query)}


def cell_groups(db: Session, release: Release, *, since: float | None, until: float | None,
                utc_offset_s: int) -> dict[str, dict[int, CellSums]]:
    """Released cells of every aggregate-only session added up per course, per teacher and per hour of the day
    (of the cell's start, UTC + ``utc_offset_s``: a cell is never split between two hours)."""
    hour = bucket_index(AggregateCell.cell * release.cell_s + utc_offset_s, 3600) % 24
    out: dict[str, dict[int, CellSums]] = {}
    for name, key in (("courses", Course.id), ("teachers", Course.teacher_id), ("hours", hour)):
        query = (select(key, *_figures(COUNT_COLUMNS))
                 .join(ClassSession, ClassSession.id == AggregateCell.session_id)
                 .join(Course, Course.id == ClassSession.course_id)
                 .where(*_released(release, private_session_ids(), since, until)).group_by(key))
        out[name] = {int(row[0]): _sums([row[1:]]) for row in db.execute(query)}
    return out
