"""The class's figures per lesson topic, and when a topic differs clearly from the rest of the session.

Each topic is a time range answered by :func:`classmood.server.analytics.service.session_histogram`, so the
privacy rules are the histogram's: an aggregate-only session's topic is a sum of released cells (every cell
the range overlaps), and a topic without any shows "too few students" and no figure. "The rest of the
session" is the whole session minus the topic: a difference of two sums of released cells, which is itself
one (the topic's cells are among the session's).

>>> rule = DifferenceRule()
>>> rule.differs(31, 100, 12, 100), rule.differs(3, 10, 1, 10), rule.differs(20, 100, 15, 100)
(True, False, False)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy.orm import Session

from classmood.labels import negative_part
from classmood.server.analytics.schemas import HistogramOut
from classmood.server.analytics.service import Policy, Window, session_histogram
from classmood.server.db import epoch_now
from classmood.server.faces.service import range_presence
from classmood.server.sessions.models import ClassSession
from classmood.server.topics.schemas import DifferenceRuleOut, TopicOut, TopicSummary, TopicSummaryOut
from classmood.server.topics.service import TopicSpan, topic_spans


@dataclass(frozen=True)
class DifferenceRule:
    """When a topic's negative share "differs clearly" from the rest of the session: both sides hold at least
    ``min_observations`` observations, the shares differ by at least ``min_difference``, and a two-proportion
    z-test over the observations gives |z| >= ``z``. Frames of one student are not independent, so the
    z-test alone would flag small differences in long lessons: the minimum difference keeps it to what a
    teacher would call clear."""

    min_observations: int = 30
    min_difference: float = 0.10
    z: float = 1.96

    def differs(self, k1: int, n1: int, k2: int, n2: int) -> bool:
        """Whether ``k1`` negative of ``n1`` differs clearly from ``k2`` of ``n2``."""
        if min(n1, n2) < self.min_observations:
            return False
        p1, p2 = k1 / n1, k2 / n2
        pooled = (k1 + k2) / (n1 + n2)
        spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        return abs(p1 - p2) >= self.min_difference and spread > 0 and abs(p1 - p2) / spread >= self.z

    def out(self) -> DifferenceRuleOut:
        """The rule as the API shows it (the report shows the text on hover)."""
        text = (f"A topic is called out when its negative share (Angry, Disgust, Fear, Sad) differs from the rest "
                f"of the session by at least {self.min_difference:.0%}, both hold at least "
                f"{self.min_observations} observations, and a two-proportion z-test gives |z| ≥ {self.z:g}.")
        return DifferenceRuleOut(text=text, min_observations=self.min_observations,
                                 min_difference=self.min_difference, z=self.z)


RULE = DifferenceRule()


def percent(share: float) -> str:
    """A share as the report's sentences write it.

    >>> percent(0.314), percent(0.625)
    ('31 %', '63 %')
    """
    return f"{math.floor(100 * share + 0.5)} %"  # half up, as the pages' Math.round (round() goes to even)


def _window(span: TopicSpan, last: bool) -> Window:
    # The last topic takes everything after its start: a device clock a little ahead of the server may stamp
    # scores after the session's recorded end.
    return Window(since=span.start, until=None if last else span.end)


def topic_histograms(db: Session, *, session: ClassSession, policy: Policy) -> list[tuple[TopicSpan, HistogramOut]]:
    """Each topic of the session with the histogram of its time range."""
    spans = topic_spans(db, session=session)
    return [(span, session_histogram(db, session=session, window=_window(span, k == len(spans) - 1), policy=policy))
            for k, span in enumerate(spans)]


def list_topics(db: Session, *, session: ClassSession, policy: Policy) -> list[TopicOut]:
    """``GET /topics``: every topic with its histogram, ordered by start."""
    return [TopicOut(id=s.id, title=s.title, start=s.start, end=s.end, histogram=h)
            for s, h in topic_histograms(db, session=session, policy=policy)]


def _negatives(histogram: HistogramOut) -> int:
    return int(negative_part(histogram.counts))


def _summary(span: TopicSpan, h: HistogramOut, whole: HistogramOut, now: float) -> TopicSummary:
    duration = (span.end if span.end is not None else now) - span.start
    if h.suppressed or whole.suppressed:
        return TopicSummary(id=span.id, title=span.title, start=span.start, end=span.end, duration_s=duration,
                            too_few_students=True)
    k1, n1 = _negatives(h), h.total
    k2, n2 = _negatives(whole) - k1, whole.total - n1
    share = k1 / n1 if n1 else None
    rest = k2 / n2 if n2 else None
    differs = RULE.differs(k1, n1, k2, n2)
    sentence = (f"{span.title}: negative share {percent(k1 / n1)} against {percent(k2 / n2)} for the rest"
                if differs else None)
    return TopicSummary(id=span.id, title=span.title, start=span.start, end=span.end, duration_s=duration,
                        students=h.participants, observations=n1, shares=h.shares, negative_share=share,
                        rest_negative_share=rest, differs=differs, sentence=sentence)


def _with_faces(db: Session, session: ClassSession, row: TopicSummary, last: bool) -> TopicSummary:
    """The topic's students present and faces in view (identified sessions only)."""
    counts = range_presence(db, session=session, since=row.start, until=None if last else row.end)
    if counts is None:
        return row
    return row.model_copy(update={"present": counts[0], "faces_in_view": counts[1]})


def topic_summary(db: Session, *, session: ClassSession, policy: Policy) -> TopicSummaryOut:
    """``GET /topics/summary``: per topic its figures against the rest of the session, and the rule."""
    whole = session_histogram(db, session=session, window=Window(), policy=policy)
    now = epoch_now()
    pairs = topic_histograms(db, session=session, policy=policy)
    topics = [_with_faces(db, session, _summary(span, h, whole, now), k == len(pairs) - 1)
              for k, (span, h) in enumerate(pairs)]
    return TopicSummaryOut(rule=RULE.out(), topics=topics)
