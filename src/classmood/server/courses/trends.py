"""Course and platform trends: one row per session of a course, and each course's figures per week.

Every figure is a session's histogram (:func:`classmood.server.analytics.service.session_histogram`), so an
aggregate-only session counts only through its released cells, and a session or topic without any is
withheld; sums over sessions add released cells only.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from classmood.labels import LABELS
from classmood.server.accounts.models import User
from classmood.server.analytics import queries
from classmood.server.analytics.schemas import HistogramOut
from classmood.server.analytics.service import Policy, Window, negative_share, session_histogram
from classmood.server.courses.models import Course
from classmood.server.courses.schemas import (
    CourseTrendOut,
    CourseWeeks,
    PlatformTrendOut,
    TrendSession,
    TrendTopic,
    WeekFigures,
)
from classmood.server.courses.service import get_course
from classmood.server.db import as_utc
from classmood.server.sessions.models import ClassSession
from classmood.server.topics.figures import topic_histograms


def _started(db: Session, *, course_id: int | None = None, since: datetime | None = None) -> list[ClassSession]:
    query = select(ClassSession).where(ClassSession.started_at.is_not(None))
    if course_id is not None:
        query = query.where(ClassSession.course_id == course_id)
    if since is not None:
        query = query.where(ClassSession.started_at >= since)
    return list(db.scalars(query.order_by(ClassSession.started_at, ClassSession.id)))


def _topic(title: str, start: float, end: float | None, h: HistogramOut) -> TrendTopic:
    return TrendTopic(title=title, start=start, end=end, total=h.total, shares=h.shares,
                      negative_share=negative_share(h), too_few_students=h.suppressed)


def _session_row(db: Session, session: ClassSession, policy: Policy) -> TrendSession:
    h = session_histogram(db, session=session, window=Window(), policy=policy)
    topics = [_topic(span.title, span.start, span.end, th)
              for span, th in topic_histograms(db, session=session, policy=policy)]
    return TrendSession(session_id=session.id, title=session.title, started_at=as_utc(session.started_at),
                        ended_at=as_utc(session.ended_at), participants=h.participants, total=h.total,
                        shares=h.shares, negative_share=negative_share(h), suppressed=h.suppressed, topics=topics)


def course_trend(db: Session, *, user: User, course_id: int, policy: Policy) -> CourseTrendOut:
    """Every started session of a course, oldest first, with its figures and its topics' (its teacher or admin)."""
    course = get_course(db, user=user, course_id=course_id)
    return CourseTrendOut(course_id=course.id, title=course.title,
                          sessions=[_session_row(db, s, policy) for s in _started(db, course_id=course.id)])


def week_of(moment: datetime) -> date:
    """The Monday (UTC) of a moment's ISO week.

    >>> week_of(datetime(2026, 12, 6, 20, 0, tzinfo=UTC))
    datetime.date(2026, 11, 30)
    """
    day = moment.astimezone(UTC).date()
    return day - timedelta(days=day.weekday())


def _week_figures(week: date, sessions: int, counts: queries.Counts) -> WeekFigures:
    h = HistogramOut.of(counts, suppressed=False)
    return WeekFigures(week=week, sessions=sessions, total=h.total, shares=h.shares, negative_share=negative_share(h))


def platform_trend(db: Session, *, weeks: int, now: datetime, policy: Policy) -> PlatformTrendOut:
    """Each course's figures per ISO week of its sessions' start over the last ``weeks`` weeks (admins)."""
    first = week_of(now) - timedelta(weeks=weeks - 1)
    since = datetime(first.year, first.month, first.day, tzinfo=UTC)
    per: dict[int, dict[date, tuple[int, dict[str, int]]]] = {}
    for session in _started(db, since=since):
        started = as_utc(session.started_at)
        assert started is not None
        h = session_histogram(db, session=session, window=Window(), policy=policy)
        n, counts = per.setdefault(session.course_id, {}).get(week_of(started), (0, dict.fromkeys(LABELS, 0)))
        added = {label: counts[label] + h.counts.get(label, 0) for label in LABELS}
        per[session.course_id][week_of(started)] = (n + 1, added)
    teachers, _ = queries.names(db)
    courses = db.scalars(select(Course).where(Course.id.in_(list(per))).order_by(Course.id))
    rows = [CourseWeeks(course_id=c.id, title=c.title, teacher=teachers.get(c.teacher_id, "?"),
                        weeks=[_week_figures(w, n, queries.Counts(counts)) for w, (n, counts) in
                               sorted(per[c.id].items())]) for c in courses]
    return PlatformTrendOut(weeks=[first + timedelta(weeks=k) for k in range(weeks)], courses=rows)
