"""Per-student figures, for identified sessions only: every function here refuses aggregate-only ones (403).

"Students to check on" (:class:`CheckOnRule`): a student whose negative share (Angry, Disgust, Fear, Sad) over
the last ``recent_s`` seconds is at least ``min_recent_share`` and at least ``min_increase`` above their own
share earlier in the session, with at least ``min_observations`` observations in each period. It compares a
student with their own earlier level, not with the class, so a face that always reads a little sad is not
flagged; thin data is never flagged, only listed as "not enough data".

>>> rule = CheckOnRule()
>>> rule.flags(recent=(12, 20), earlier=(2, 40)), rule.flags(recent=(12, 20), earlier=(10, 40))
(True, False)
>>> rule.flags(recent=(5, 5), earlier=(0, 40))
False
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy.orm import Session

from classmood.exports.csv_cells import safe_row
from classmood.labels import LABELS, negative_part
from classmood.server.analytics.schemas import TimelineOut
from classmood.server.analytics.service import Policy, Window, iso_time, session_timeline
from classmood.server.db import as_utc, epoch_now
from classmood.server.errors import Forbidden, NotFound
from classmood.server.sessions.models import ClassSession, Participant
from classmood.server.students import queries
from classmood.server.students.schemas import CheckOnOut, CheckOnRuleOut, PeriodOut, StudentRef, StudentToCheck


def refuse_private(session: ClassSession) -> None:
    """403 for an aggregate-only session: it never answers about one student."""
    if session.private:
        raise Forbidden("this session is aggregate-only: no figures about single participants")


def _participant(db: Session, session: ClassSession, participant_id: int) -> Participant:
    participant = db.get(Participant, participant_id)
    if participant is None or participant.session_id != session.id:
        raise NotFound(f"no participant {participant_id} in this session")
    return participant


def student_timeline(db: Session, *, session: ClassSession, participant_id: int, window: Window, bucket_s: float,
                     policy: Policy) -> TimelineOut:
    """One student's timeline, the session timeline's schema (refused for aggregate-only sessions)."""
    refuse_private(session)
    _participant(db, session, participant_id)
    own = Window(since=window.since, until=window.until, participant_id=participant_id)
    return session_timeline(db, session=session, window=own, bucket_s=bucket_s, policy=policy)


def own_timeline(db: Session, *, participant: Participant, bucket_s: float, policy: Policy) -> TimelineOut:
    """The student's own timeline (participant token; refused for aggregate-only sessions)."""
    session = db.get(ClassSession, participant.session_id)
    if session is None:
        raise NotFound("your session is gone")
    refuse_private(session)
    return session_timeline(db, session=session, window=Window(participant_id=participant.id), bucket_s=bucket_s,
                            policy=policy)


@dataclass(frozen=True)
class CheckOnRule:
    """The thresholds of "students to check on" (see the module docstring)."""

    recent_s: float = 300.0
    min_observations: int = 20
    min_increase: float = 0.25
    min_recent_share: float = 0.40

    def enough(self, recent: tuple[int, int], earlier: tuple[int, int]) -> bool:
        """Whether both periods hold enough observations (each a (negative, total) pair)."""
        return min(recent[1], earlier[1]) >= self.min_observations

    def flags(self, *, recent: tuple[int, int], earlier: tuple[int, int]) -> bool:
        """Whether a student with these (negative, total) counts is one to check on."""
        if not self.enough(recent, earlier):
            return False
        now, before = recent[0] / recent[1], earlier[0] / earlier[1]
        return now >= self.min_recent_share and now - before >= self.min_increase

    def out(self) -> CheckOnRuleOut:
        """The rule as the API shows it (the page shows the text on hover)."""
        minutes = self.recent_s / 60
        text = (f"Students whose negative share (Angry, Disgust, Fear, Sad) over the last {minutes:g} min is at "
                f"least {self.min_recent_share:.0%} and at least {self.min_increase:.0%} above their own share "
                f"earlier in this session, with at least {self.min_observations} observations in each period.")
        return CheckOnRuleOut(text=text, recent_s=self.recent_s, min_observations=self.min_observations,
                              min_increase=self.min_increase, min_recent_share=self.min_recent_share)


def _reference_now(session: ClassSession) -> float:
    ended = as_utc(session.ended_at)
    return ended.timestamp() if ended is not None else epoch_now()


def _period(counts: tuple[int, int]) -> PeriodOut:
    return PeriodOut(observations=counts[1], negative_share=counts[0] / counts[1] if counts[1] else None)


def check_on(db: Session, *, session: ClassSession, rule: CheckOnRule) -> CheckOnOut:
    """The students to check on now (or at the session's end), most increased first."""
    refuse_private(session)
    now = _reference_now(session)
    flagged: list[StudentToCheck] = []
    thin: list[StudentRef] = []
    for row in queries.negative_by_period(db, session_id=session.id, cut=now - rule.recent_s):
        if not rule.enough(row.recent, row.earlier):
            thin.append(StudentRef(participant_id=row.participant_id, display_name=row.display_name))
        elif rule.flags(recent=row.recent, earlier=row.earlier):
            recent, earlier = _period(row.recent), _period(row.earlier)
            increase = (recent.negative_share or 0.0) - (earlier.negative_share or 0.0)
            flagged.append(StudentToCheck(participant_id=row.participant_id, display_name=row.display_name,
                                          recent=recent, earlier=earlier, increase=increase))
    flagged.sort(key=lambda s: -s.increase)
    return CheckOnOut(rule=rule.out(), now=now, students=flagged, not_enough_data=thin)


SUMMARY_COLUMNS = ("participant_id", "display_name", "observations", "first_time", "last_time", "negative_share",
                   "top_label", *(f"share_{label.lower()}" for label in LABELS))


def _iso(ts: float | None) -> str:
    return "" if ts is None else iso_time(ts)


def student_summary_csv(db: Session, *, session: ClassSession) -> Iterator[str]:
    """One CSV row per student of the session (refused for aggregate-only sessions)."""
    refuse_private(session)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(SUMMARY_COLUMNS)
    for row in queries.student_rows(db, session_id=session.id):
        total = sum(row.counts)
        shares = [n / total if total else 0.0 for n in row.counts]
        negative = negative_part(dict(zip(LABELS, shares, strict=True)))
        top = LABELS[max(range(len(LABELS)), key=row.counts.__getitem__)] if total else ""
        writer.writerow(safe_row([row.participant_id, row.display_name, total, _iso(row.first_ts), _iso(row.last_ts),
                         f"{negative:.4f}" if total else "", top, *(f"{share:.4f}" for share in shares)]))
    yield buffer.getvalue()
