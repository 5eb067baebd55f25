"""The per-student SQL: negative counts before and after a time, and per-student totals, counted by the database."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from classmood.labels import LABELS, NEGATIVE_INDICES
from classmood.server.observations.models import Observation
from classmood.server.sessions.models import Participant


@dataclass(frozen=True)
class PeriodCounts:
    """A student's (negative, total) observations before ``cut`` (earlier) and from it on (recent)."""

    participant_id: int
    display_name: str
    earlier: tuple[int, int]
    recent: tuple[int, int]


def negative_by_period(db: Session, *, session_id: int, cut: float) -> Iterator[PeriodCounts]:
    """Per participant of the session with observations: negative and total counts before and after ``cut``."""
    recent = Observation.ts >= cut
    negative = Observation.label.in_(NEGATIVE_INDICES)
    columns = [func.sum(case((cond, 1), else_=0)) for cond in
               (~recent & negative, ~recent, recent & negative, recent)]
    query = (select(Observation.participant_id, Participant.display_name, *columns)
             .join(Participant, Participant.id == Observation.participant_id)
             .where(Observation.session_id == session_id)
             .group_by(Observation.participant_id, Participant.display_name).order_by(Observation.participant_id))
    for pid, name, early_neg, early, late_neg, late in db.execute(query):
        yield PeriodCounts(int(pid), str(name), (int(early_neg or 0), int(early or 0)),
                           (int(late_neg or 0), int(late or 0)))


@dataclass(frozen=True)
class StudentRow:
    """A student's observations per emotion (LABELS order) and first and last time seen."""

    participant_id: int
    display_name: str
    counts: tuple[int, ...]
    first_ts: float | None
    last_ts: float | None


def student_rows(db: Session, *, session_id: int) -> Iterator[StudentRow]:
    """Every participant of the session (those without observations too), in order of joining."""
    per_label = [func.sum(case((Observation.label == k, 1), else_=0)) for k in range(len(LABELS))]
    query = (select(Participant.id, Participant.display_name, func.min(Observation.ts), func.max(Observation.ts),
                    *per_label)
             .outerjoin(Observation, Observation.participant_id == Participant.id)
             .where(Participant.session_id == session_id)
             .group_by(Participant.id, Participant.display_name).order_by(Participant.id))
    for pid, name, first, last, *counts in db.execute(query):
        yield StudentRow(int(pid), str(name), tuple(int(n or 0) for n in counts),
                         None if first is None else float(first), None if last is None else float(last))
