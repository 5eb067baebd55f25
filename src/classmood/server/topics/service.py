"""Lesson topics: creating, moving and deleting them, and the time range each one covers.

A topic runs from its ``start`` to the next topic's start, or to the session's end (``end`` is ``None`` while
the last topic of a live session is still running). Starts must lie within the session: from its start to its
end, or to now while it is live.

>>> spans_of([(1, "Intro", 10.0), (2, "Quiz", 40.0)], session_end=100.0)[1]
TopicSpan(id=2, title='Quiz', start=40.0, end=100.0)
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from classmood.server.db import as_utc, epoch_now
from classmood.server.errors import Conflict, Invalid, NotFound
from classmood.server.sessions.models import ClassSession
from classmood.server.topics.models import LessonTopic

CLOCK_GRACE_S = 1.0


@dataclass(frozen=True)
class TopicSpan:
    """A topic and the time range it covers (``end`` exclusive; ``None`` while it runs)."""

    id: int
    title: str
    start: float
    end: float | None


def session_range(session: ClassSession) -> tuple[float, float | None]:
    """The session's start and end in epoch seconds (end ``None`` while live); 409 before it has started."""
    started, ended = as_utc(session.started_at), as_utc(session.ended_at)
    if started is None:
        raise Conflict("the session has not started: topics mark times of a session that has begun")
    return started.timestamp(), None if ended is None else ended.timestamp()


def spans_of(rows: Sequence[tuple[int, str, float]], *, session_end: float | None) -> list[TopicSpan]:
    """Topics (id, title, start) in order of start, each ending where the next begins or at ``session_end``."""
    ordered = sorted(rows, key=lambda row: (row[2], row[0]))
    ends: list[float | None] = [row[2] for row in ordered[1:]]
    if ordered:
        ends.append(session_end)
    return [TopicSpan(id, title, start, end) for (id, title, start), end in zip(ordered, ends, strict=True)]


def topic_spans(db: Session, *, session: ClassSession) -> list[TopicSpan]:
    """The session's topics in order of start, with their ends."""
    rows = db.execute(select(LessonTopic.id, LessonTopic.title, LessonTopic.start)
                      .where(LessonTopic.session_id == session.id)).all()
    ended = as_utc(session.ended_at)
    return spans_of([(int(i), str(t), float(s)) for i, t, s in rows],
                    session_end=None if ended is None else ended.timestamp())


def topic_at(spans: Sequence[TopicSpan], ts: float) -> TopicSpan | None:
    """The topic running at ``ts`` (``None`` before the first one).

    >>> spans = spans_of([(1, "Intro", 10.0), (2, "Quiz", 40.0)], session_end=None)
    >>> [getattr(topic_at(spans, t), "title", None) for t in (5.0, 10.0, 39.9, 500.0)]
    [None, 'Intro', 'Intro', 'Quiz']
    """
    k = bisect_right([span.start for span in spans], ts) - 1
    return spans[k] if k >= 0 else None


def _checked_start(session: ClassSession, start: float | None) -> float:
    first, last = session_range(session)
    now = epoch_now()
    value = now if start is None else start
    end = last if last is not None else now
    # A second's grace either side: the session's stored start is rounded to microseconds (a topic given the
    # start the API showed must pass), and a topic started "now" by a dashboard whose request took a moment
    # is still within a live session.
    if not first - CLOCK_GRACE_S <= value <= end + CLOCK_GRACE_S:
        raise Invalid(f"start {value:.0f} is outside the session (from {first:.0f} to {end:.0f})",
                      loc=("body", "start"))
    return value


def _span(db: Session, session: ClassSession, topic_id: int) -> TopicSpan:
    for span in topic_spans(db, session=session):
        if span.id == topic_id:
            return span
    raise NotFound(f"no topic {topic_id} in this session")


def _commit(db: Session) -> None:
    try:
        db.commit()
    except IntegrityError as exc:
        db.rollback()
        raise Conflict("another topic of this session starts at that very time") from exc


def create_topic(db: Session, *, session: ClassSession, title: str, start: float | None) -> TopicSpan:
    """Start a topic at ``start`` (default now); it ends where the next topic starts or with the session."""
    topic = LessonTopic(session_id=session.id, title=title.strip(), start=_checked_start(session, start))
    db.add(topic)
    _commit(db)
    return _span(db, session, topic.id)


def _topic(db: Session, session: ClassSession, topic_id: int) -> LessonTopic:
    topic = db.get(LessonTopic, topic_id)
    if topic is None or topic.session_id != session.id:
        raise NotFound(f"no topic {topic_id} in this session")
    return topic


def update_topic(db: Session, *, session: ClassSession, topic_id: int, title: str | None,
                 start: float | None) -> TopicSpan:
    """Rename a topic and/or move its start (within the session)."""
    topic = _topic(db, session, topic_id)
    if title is not None:
        topic.title = title.strip()
    if start is not None:
        topic.start = _checked_start(session, start)
    _commit(db)
    return _span(db, session, topic.id)


def delete_topic(db: Session, *, session: ClassSession, topic_id: int) -> None:
    """Delete a topic: the one before it then runs on to the next."""
    db.delete(_topic(db, session, topic_id))
    db.commit()
