"""The analytics answers, with ClassMood's privacy rules applied in this one place.

Every analytics route calls one function here; none reads :mod:`.queries` itself. The rules:

- a session under aggregate-only (:attr:`ClassSession.private`: the mode is on, or data was gathered
  while it was) never answers per participant: ``/participants``, the CSV export and
  ``participant_id`` filters are refused (403);
- every figure that counts its observations (its histogram and timeline; course, teacher and platform
  totals; the overview) counts them only in whole time cells that are sealed and hold ``min_faces``
  participants (:mod:`.release`), so no sum or difference of answers reveals a smaller group; an answer
  without any such cell is withheld (``suppressed``).

>>> rules = Policy(min_faces=5, cell_s=30, seal_s=10.0)
>>> rules.hides(private=True, participants=3), rules.hides(private=False, participants=1)
(True, False)
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, sessionmaker

from classmood.exports.csv_cells import safe_row
from classmood.labels import LABELS, negative_part
from classmood.server.accounts.models import User
from classmood.server.analytics import queries
from classmood.server.analytics import release as cells
from classmood.server.analytics.queries import Counts, Scope
from classmood.server.analytics.release import CellSums, Release
from classmood.server.analytics.schemas import (
    BucketOut,
    CourseRow,
    HistogramOut,
    HourRow,
    OverviewOut,
    ParticipantOut,
    TeacherRow,
    TimelineOut,
)
from classmood.server.courses.service import get_course
from classmood.server.db import as_utc, epoch_now
from classmood.server.errors import Forbidden, Invalid, NotFound
from classmood.server.sessions.models import ClassSession
from classmood.server.topics.service import topic_at, topic_spans

CSV_CHUNK_CHARS = 64_000
# Charts (the pages' and the PDF's) draw a bar or segment as uncertain (faded, hatched, n / minimum of its height,
# with its n) below either minimum (issue 22 §6): one observation must never stand as a full-height "100 %". Three
# students, as Canvas needs for an "active course".
CHART_MIN_OBSERVATIONS = 20
CHART_MIN_STUDENTS = 3


def uncertain(total: int, students: int | None) -> bool:
    """True when a bar of ``total`` observations from ``students`` students (``None``: unknown) is too thin to read
    as shares: below either chart minimum.

    >>> uncertain(20, 3), uncertain(19, 30), uncertain(500, 2), uncertain(20, None)
    (False, True, True, False)
    """
    return total < CHART_MIN_OBSERVATIONS or (students is not None and students < CHART_MIN_STUDENTS)


def uncertain_height(total: int) -> float:
    """The share of its full height an uncertain bar is drawn at: n / minimum, at most all of it.

    >>> uncertain_height(1), uncertain_height(10), uncertain_height(400)
    (0.05, 0.5, 1.0)
    """
    return min(1.0, total / CHART_MIN_OBSERVATIONS)


@dataclass(frozen=True)
class Policy:
    """The aggregate-only rules: figures of a private group need ``min_faces`` distinct participants in each
    ``cell_s``-second cell, shown ``seal_s`` after the cell ends."""

    min_faces: int
    cell_s: int
    seal_s: float

    def hides(self, *, private: bool, participants: int) -> bool:
        """Whether figures of a group must be withheld."""
        return private and participants < self.min_faces

    @property
    def release(self) -> Release:
        """The cell rule for queries."""
        return Release(cell_s=self.cell_s, seal_s=self.seal_s, min_faces=self.min_faces)


@dataclass(frozen=True)
class Window:
    """What a query asks for: a time range (``until`` exclusive) and optionally one participant."""

    since: float | None = None
    until: float | None = None
    participant_id: int | None = None


def _refuse_private(session: ClassSession, what: str) -> None:
    if session.private:
        raise Forbidden(f"this session is aggregate-only: {what}")


def _session_scope(session: ClassSession, window: Window) -> Scope:
    if window.participant_id is not None:
        _refuse_private(session, "no figures about single participants")
    return Scope(session_id=session.id, participant_id=window.participant_id, since=window.since,
                 until=window.until)


def _counts(sums: CellSums) -> Counts:
    return Counts(sums.counts, sums.participants)


def _added(a: Counts, b: Counts) -> Counts:
    return Counts({label: a.counts[label] + b.counts[label] for label in LABELS}, a.participants + b.participants)


def _sealed(db: Session, policy: Policy, sessions: Select[int]) -> Release:
    """Seal what is due among ``sessions`` and return the rule to read their cells with."""
    cells.seal(db, policy.release, sessions)
    return policy.release


def _only(session: ClassSession) -> Select[int]:
    return select(ClassSession.id).where(ClassSession.id == session.id)


def session_histogram(db: Session, *, session: ClassSession, window: Window, policy: Policy,
                      smooth_s: float | None = None) -> HistogramOut:
    """Observations per emotion in a session; with ``smooth_s``, participants per emotion of their reading
    steadied over that many seconds (the same suppression: it counts participants too).

    An aggregate-only session counts its released cells only, and steadies each participant's reading over
    each cell instead of ``smooth_s`` (a sliding window could be subtracted from the next one).
    """
    scope = _session_scope(session, window)
    if session.private:
        rule = _sealed(db, policy, _only(session))
        counts = _counts(cells.cell_sums(db, rule, sessions=_only(session), since=window.since, until=window.until,
                                         steady=smooth_s is not None))
    elif smooth_s is None:
        counts = queries.histogram(db, scope=scope)
    else:
        counts = queries.smoothed_histogram(db, scope=scope, window_s=smooth_s)
    return HistogramOut.of(counts, suppressed=policy.hides(private=session.private, participants=counts.participants))


def _timeline_range(session: ClassSession, window: Window) -> tuple[float | None, float | None]:
    started, ended = as_utc(session.started_at), as_utc(session.ended_at)
    lo = window.since if window.since is not None else (started.timestamp() if started else None)
    if window.until is not None:
        hi: float | None = window.until - 1e-6  # until is exclusive
    elif ended is not None:
        hi = ended.timestamp()
    else:
        hi = epoch_now() if session.status == "live" else None
    return lo, hi


def timeline_range(session: ClassSession, window: Window) -> tuple[float | None, float | None]:
    """The span a session's timeline covers: ``since`` or its start, to ``until``, its end or now (live)."""
    return _timeline_range(session, window)


def session_timeline(db: Session, *, session: ClassSession, window: Window, bucket_s: float,
                     policy: Policy) -> TimelineOut:
    """Counts per time bucket from the start of the session (or ``since``), empty buckets as zeros.

    An aggregate-only session's buckets are whole cells wide (``bucket_s`` rounded up) and sum released cells.
    """
    lo, hi = _timeline_range(session, window)
    scope = _session_scope(session, window)
    try:
        if session.private:
            rule = _sealed(db, policy, _only(session))
            bucket_s = rule.bucket(bucket_s)
            sums = cells.cell_buckets(db, rule, session_id=session.id, bucket_s=int(bucket_s), since=window.since,
                                      until=window.until)
            by_bucket = {k: [(LABELS.index(label), n) for label, n in c.counts.items() if n] for k, c in sums.items()}
            buckets = queries.fill_buckets(by_bucket, {k: c.participants for k, c in sums.items()}, bucket_s, lo, hi)
        else:
            buckets = queries.timeline(db, scope=scope, bucket_s=bucket_s, lo=lo, hi=hi)
    except ValueError as exc:
        raise Invalid(str(exc)) from exc
    return TimelineOut(bucket_s=bucket_s, buckets=[
        BucketOut.of(b, suppressed=policy.hides(private=session.private, participants=b.counts.participants))
        for b in buckets])


def session_participants(db: Session, *, session: ClassSession, window: Window,
                         smooth_s: float = 0.0) -> list[ParticipantOut]:
    """Per participant: observations, last emotion, the reading steadied over ``smooth_s`` seconds and counts
    (refused for aggregate-only sessions)."""
    _refuse_private(session, "no figures about single participants")
    summaries = queries.participant_summaries(db, scope=_session_scope(session, window), smooth_s=smooth_s)
    return [ParticipantOut.of(s) for s in summaries]


def session_export(sessions: sessionmaker[Session], *, session: ClassSession, window: Window) -> Iterator[str]:
    """Every observation of the session as CSV text chunks (refused for aggregate-only sessions).

    The refusal happens now; the rows are read lazily in a database session of their own, because the
    response streams after the request's session has closed.
    """
    _refuse_private(session, "no per-observation export")
    return _csv_chunks(sessions, session, _session_scope(session, window))


# After ts: the same instant in ISO 8601 (UTC), and the lesson topic running then (empty before the first).
EXPORT_COLUMNS = (*queries.CSV_COLUMNS[:6], "time", "topic", *queries.CSV_COLUMNS[6:])


def iso_time(ts: float) -> str:
    """Epoch seconds as ISO 8601 in UTC, to the millisecond.

    >>> iso_time(0.25)
    '1970-01-01T00:00:00.250+00:00'
    """
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def _csv_chunks(sessions: sessionmaker[Session], session: ClassSession, scope: Scope) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(EXPORT_COLUMNS)
    with sessions() as db:
        spans = topic_spans(db, session=session)
        for row in queries.export_rows(db, scope=scope):
            topic = topic_at(spans, row[5])
            # a display name or topic title may be a formula: classmood.exports.csv_cells
            writer.writerow(safe_row((*row[:6], iso_time(row[5]), "" if topic is None else topic.title, *row[6:])))
            if buffer.tell() > CSV_CHUNK_CHARS:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()


def _totals(db: Session, scope: Scope, policy: Policy) -> HistogramOut:
    # Aggregate-only sessions add their released cells only, each already a big-enough group, so a total is
    # never withheld and "course total minus the other sessions" gives nothing the session would not show.
    public = queries.histogram(db, scope=replace(scope, public_only=True))
    sessions = queries.scope_sessions(scope)
    rule = _sealed(db, policy, sessions)
    private = cells.cell_sums(db, rule, sessions=sessions, since=scope.since, until=scope.until)
    return HistogramOut.of(_added(public, _counts(private)), suppressed=False)


def _merged_groups(public: list[queries.Group], private: dict[int, CellSums]) -> list[queries.Group]:
    merged = {group.key: group.counts for group in public}
    for key, sums in private.items():
        merged[key] = _added(merged.get(key, queries.counts_from([])), _counts(sums))
    return [queries.Group(key, counts) for key, counts in sorted(merged.items())]


def course_histogram(db: Session, *, user: User, course_id: int, window: Window, policy: Policy) -> HistogramOut:
    """Observations per emotion over all sessions of a course (its teacher or an admin)."""
    get_course(db, user=user, course_id=course_id)
    return _totals(db, Scope(course_id=course_id, since=window.since, until=window.until), policy)


def teacher_histogram(db: Session, *, user: User, teacher_id: int, window: Window, policy: Policy) -> HistogramOut:
    """Observations per emotion over all courses of a teacher (that teacher or an admin)."""
    if user.role != "admin" and user.id != teacher_id:
        raise Forbidden("only your own figures, or an admin")
    if db.get(User, teacher_id) is None:
        raise NotFound(f"no teacher {teacher_id}")
    return _totals(db, Scope(teacher_id=teacher_id, since=window.since, until=window.until), policy)


def platform_histogram(db: Session, *, window: Window, policy: Policy) -> HistogramOut:
    """Observations per emotion on the whole platform."""
    return _totals(db, Scope(since=window.since, until=window.until), policy)


def platform_overview(db: Session, *, window: Window, utc_offset_s: int, policy: Policy) -> OverviewOut:
    """Figures per course, per teacher and per hour of the day (UTC + ``utc_offset_s``)."""
    scope = Scope(since=window.since, until=window.until, public_only=True)
    groups = queries.overview_groups(db, scope=scope, utc_offset_s=utc_offset_s)
    rule = _sealed(db, policy, cells.private_session_ids())
    private = cells.cell_groups(db, rule, since=window.since, until=window.until, utc_offset_s=utc_offset_s)
    for name, extra in private.items():
        groups[name] = _merged_groups(groups[name], extra)
    teachers, courses = queries.names(db)

    def shown(group: queries.Group) -> HistogramOut:
        # Released cells only (see _totals): nothing left to withhold.
        return HistogramOut.of(group.counts, suppressed=False)

    def course_row(group: queries.Group) -> CourseRow:
        title, teacher_id = courses.get(group.key, ("?", 0))
        return CourseRow(**shown(group).model_dump(), course_id=group.key, title=title, teacher_id=teacher_id,
                         teacher=teachers.get(teacher_id, "?"))

    by_hour = {g.key: g for g in groups["hours"]}
    empty = queries.Group(0, queries.counts_from([]))
    return OverviewOut(
        courses=[course_row(g) for g in groups["courses"]],
        teachers=[TeacherRow(**shown(g).model_dump(), teacher_id=g.key, name=teachers.get(g.key, "?"))
                  for g in groups["teachers"]],
        hours=[HourRow(**shown(by_hour.get(h, empty)).model_dump(), hour=h) for h in range(24)],
        labels=list(LABELS))


def negative_share(histogram: HistogramOut) -> float | None:
    """The share of Angry, Disgust, Fear and Sad in an answer; ``None`` when it is withheld or empty.

    >>> negative_share(HistogramOut.of(queries.counts_from([(5, 1), (3, 3)], 1), suppressed=False))
    0.25
    """
    if histogram.suppressed or not histogram.total:
        return None
    return negative_part(histogram.shares)
