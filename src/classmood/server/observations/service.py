"""Storing observations idempotently, a participant's own data, retention and presence."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, and_, delete, exists, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from classmood.labels import LABELS, top_label
from classmood.server.analytics.models import AggregateCell
from classmood.server.db import as_utc, epoch_now
from classmood.server.errors import Conflict, Invalid, NotFound
from classmood.server.faces.models import NoFaceSample
from classmood.server.observations.models import PROB_COLUMNS, Observation
from classmood.server.sessions.models import ClassSession, Participant

# Device clocks drift and spools replay the last minutes: five minutes either side of the session's live
# window is tolerated; a day (or 1970) is a bug that would stretch the teacher's timeline.
TS_SLACK_S = 300.0


@dataclass(frozen=True)
class NewObservation:
    """One observation to store. ``probs`` in LABELS order."""

    client_id: uuid.UUID
    ts: float
    probs: tuple[float, ...]
    score: float | None = None
    source: str = "device"

    @property
    def label(self) -> int:
        """Index of the most likely emotion."""
        return top_label(self.probs)


@dataclass(frozen=True)
class InsertResult:
    """Row ids of the newly stored observations by client id, and how many were already stored."""

    inserted: dict[uuid.UUID, int]
    duplicates: int


def _row(session_id: int, participant_id: int, item: NewObservation) -> dict[str, object]:
    row: dict[str, object] = {"session_id": session_id, "participant_id": participant_id,
                              "client_id": item.client_id, "ts": item.ts, "label": item.label,
                              "score": item.score, "source": item.source}
    row.update(zip(PROB_COLUMNS, item.probs, strict=True))
    return row


# PostgreSQL: one array per column and unnest() make a 500-row batch a single statement with 16
# parameters, about three times faster than a multi-row VALUES list with 7,000 of them.
_PG_UNNEST_INSERT = text(
    "INSERT INTO observations (session_id, participant_id, client_id, ts, label, score, source, "
    + ", ".join(PROB_COLUMNS) + ") SELECT :session_id, :participant_id, * FROM unnest("
    "CAST(:client_id AS uuid[]), CAST(:ts AS float8[]), CAST(:label AS smallint[]), CAST(:score AS float8[]), "
    "CAST(:source AS text[]), " + ", ".join(f"CAST(:{c} AS float8[])" for c in PROB_COLUMNS)
    + ") ON CONFLICT (participant_id, client_id) DO NOTHING RETURNING id, client_id")


def _columns(session_id: int, participant_id: int, items: Sequence[NewObservation]) -> dict[str, object]:
    params: dict[str, object] = {
        "session_id": session_id, "participant_id": participant_id, "client_id": [i.client_id for i in items],
        "ts": [i.ts for i in items], "label": [i.label for i in items], "score": [i.score for i in items],
        "source": [i.source for i in items]}
    for k, column in enumerate(PROB_COLUMNS):
        params[column] = [i.probs[k] for i in items]
    return params


def _insert_ignoring_duplicates(db: Session) -> Any:
    dialect = db.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = Observation.__table__
    assert isinstance(table, Table)
    stmt = insert(table).on_conflict_do_nothing(index_elements=["participant_id", "client_id"])
    return stmt.returning(table.c.id, table.c.client_id)


def check_timestamp(ts: float, *, started_at: datetime | None, now: float | None = None) -> None:
    """Refuse (422) a timestamp outside the session's live window, from its start to now, ± :data:`TS_SLACK_S`.

    The one check of observation times: frames over HTTP and WebSocket and device batches all pass here.

    >>> check_timestamp(epoch_now(), started_at=utcnow())
    >>> check_timestamp(1.0, started_at=utcnow())
    Traceback (most recent call last):
    classmood.server.errors.Invalid: ts 1 is outside the session's live window (its start to now, ± 300 s)
    """
    now = epoch_now() if now is None else now
    started = as_utc(started_at)
    start = started.timestamp() if started else now
    if not (math.isfinite(ts) and start - TS_SLACK_S <= ts <= now + TS_SLACK_S):
        raise Invalid(f"ts {ts:.0f} is outside the session's live window (its start to now, ± {TS_SLACK_S:.0f} s)")


def check_probs(items: Sequence[NewObservation]) -> None:
    """Refuse (422) observations without exactly seven probabilities."""
    for item in items:
        if len(item.probs) != len(LABELS):
            raise Invalid("each observation needs seven probabilities")


def _insert_rows(db: Session, session_id: int, participant_id: int,
                 items: Sequence[NewObservation]) -> dict[uuid.UUID, int]:
    unique = list({item.client_id: item for item in items}.values())
    if unique and db.get_bind().dialect.name == "postgresql":
        result = db.execute(_PG_UNNEST_INSERT, _columns(session_id, participant_id, unique))
        return {client_id: row_id for row_id, client_id in result}
    if unique:
        rows = [_row(session_id, participant_id, item) for item in unique]
        result = db.execute(_insert_ignoring_duplicates(db), rows)
        return {client_id: row_id for row_id, client_id in result}
    return {}


# One array parameter, not an IN list of as many: the statement text stays the same whatever the group's size,
# so it is prepared once (an IN list of 50 ids cost as much CPU as the group's INSERT).
_PG_TOUCH = text("UPDATE participants SET last_seen = :now WHERE id = ANY(CAST(:ids AS integer[]))")


def _touch(db: Session, participant_ids: Sequence[int], now: float) -> None:
    ids = sorted(set(participant_ids))
    if db.get_bind().dialect.name == "postgresql":
        db.execute(_PG_TOUCH, {"now": now, "ids": ids})
        return
    db.execute(update(Participant).where(Participant.id.in_(ids)).values(last_seen=now))


def insert_observations(db: Session, *, session_id: int, participant_id: int,
                        items: Sequence[NewObservation], now: float | None = None) -> InsertResult:
    """Store observations; those whose client id the participant already sent are skipped, not doubled.

    One ``INSERT ... ON CONFLICT DO NOTHING`` on both SQLite and PostgreSQL, so a retried batch
    (or two racing retries) cannot create duplicates. Commits. Times are checked by the caller
    (:func:`check_timestamp`), which knows the session.

    >>> # insert_observations(db, session_id=1, participant_id=2, items=[NewObservation(uuid4(), time(), probs)])
    """
    check_probs(items)
    inserted = _insert_rows(db, session_id, participant_id, items)
    _touch(db, [participant_id], epoch_now() if now is None else now)
    db.commit()
    return InsertResult(inserted=inserted, duplicates=len(items) - len(inserted))


@dataclass(frozen=True)
class Batch:
    """The observations one participant sent in one request (checked by the caller)."""

    session_id: int
    participant_id: int
    items: Sequence[NewObservation]


# Group commit on PostgreSQL: the batches of many participants in one statement, the rows as one JSON text
# (json_to_recordset): psycopg dumps a list parameter element by element in Python, which made adapting 16
# arrays cost more CPU than PostgreSQL's whole INSERT; json.dumps is C, and so is PostgreSQL's JSON parser.
# RETURNING names the participant, so each batch learns which of its rows are new.
_GROUP_FIELDS = ("session_id", "participant_id", "client_id", "ts", "label", "score", "source", *PROB_COLUMNS)
_PG_GROUP_INSERT = text(
    f"INSERT INTO observations ({', '.join(_GROUP_FIELDS)}) SELECT {', '.join(_GROUP_FIELDS)} "
    "FROM json_to_recordset(CAST(:rows AS json)) AS r(session_id integer, participant_id integer, client_id uuid, "
    "ts float8, label smallint, score float8, source text, " + ", ".join(f"{c} float8" for c in PROB_COLUMNS)
    + ") ON CONFLICT (participant_id, client_id) DO NOTHING RETURNING id, participant_id, client_id")


def _group_rows(batches: Sequence[Batch]) -> str:
    """The rows of the batches (each participant's repeated ids once) as the JSON text of ``_PG_GROUP_INSERT``."""
    rows = []
    for b in batches:
        for item in {i.client_id: i for i in b.items}.values():
            row = {"session_id": b.session_id, "participant_id": b.participant_id, "client_id": str(item.client_id),
                   "ts": item.ts, "label": item.label, "score": item.score, "source": item.source}
            row.update(zip(PROB_COLUMNS, item.probs, strict=True))
            rows.append(row)
    return json.dumps(rows)  # floats as repr(): PostgreSQL reads back the very same float8


def insert_batches(db: Session, batches: Sequence[Batch], now: float | None = None) -> list[InsertResult]:
    """Store the batches of several participants in one transaction (one INSERT on PostgreSQL); commits.

    Idempotent like :func:`insert_observations`: when two batches carry the same participant's client id,
    the first one counts it as inserted and the other as a duplicate.
    """
    for batch in batches:
        check_probs(batch.items)
    new: dict[tuple[int, uuid.UUID], int] = {}
    if db.get_bind().dialect.name == "postgresql":
        if any(batch.items for batch in batches):
            result = db.execute(_PG_GROUP_INSERT, {"rows": _group_rows(batches)})
            new = {(pid, cid): row_id for row_id, pid, cid in result}
    else:
        for batch in batches:
            rows = _insert_rows(db, batch.session_id, batch.participant_id, batch.items)
            new.update({(batch.participant_id, cid): row_id for cid, row_id in rows.items()})
    if batches:
        _touch(db, [batch.participant_id for batch in batches], epoch_now() if now is None else now)
    db.commit()
    results = []
    for batch in batches:
        inserted = {}
        for item in batch.items:
            row_id = new.pop((batch.participant_id, item.client_id), None)
            if row_id is not None:
                inserted[item.client_id] = row_id
        results.append(InsertResult(inserted=inserted, duplicates=len(batch.items) - len(inserted)))
    return results


def stored_client_ids(db: Session, *, participant_id: int, client_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these client ids the participant has stored already."""
    if not client_ids:
        return set()
    query = select(Observation.client_id).where(Observation.participant_id == participant_id,
                                                Observation.client_id.in_(list(client_ids)))
    return set(db.scalars(query))


def live_session(db: Session, *, session_id: int) -> ClassSession:
    """The session if it is live; 409 when it is scheduled or ended."""
    session = db.get(ClassSession, session_id)
    if session is None:
        raise NotFound(f"no session {session_id}")
    if session.status != "live":
        raise Conflict("this session has ended" if session.status == "ended" else "this session has not started yet")
    return session


def own_observations(db: Session, *, participant_id: int, limit: int = 1000) -> list[Observation]:
    """The participant's newest observations, newest first."""
    query = (select(Observation).where(Observation.participant_id == participant_id)
             .order_by(Observation.ts.desc(), Observation.id.desc()).limit(limit))
    return list(db.scalars(query))


def delete_own(db: Session, *, participant_id: int) -> int:
    """Delete all of a participant's observations; return how many. Commits."""
    result = db.execute(delete(Observation).where(Observation.participant_id == participant_id))
    db.execute(delete(NoFaceSample).where(NoFaceSample.participant_id == participant_id))  # their samples too
    db.commit()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def purge(db: Session, *, before_ts: float) -> tuple[int, int]:
    """Retention: delete observations older than ``before_ts``, the aggregate-only cells that ended before it,
    and the participants of sessions that ended before it and have no observation left. Return
    (observations, participants) deleted."""
    done = db.execute(delete(Observation).where(Observation.ts < before_ts))
    db.execute(delete(NoFaceSample).where(NoFaceSample.ts < before_ts))
    # The sealed figures of aggregate-only sessions are kept no longer than the observations they sum.
    db.execute(delete(AggregateCell).where((AggregateCell.cell + 1) * AggregateCell.cell_s <= before_ts))
    cutoff = datetime.fromtimestamp(before_ts, UTC)
    ended_before = select(ClassSession.id).where(ClassSession.status == "ended", ClassSession.ended_at < cutoff)
    has_rows = exists().where(Observation.participant_id == Participant.id)
    gone = db.execute(delete(Participant).where(Participant.session_id.in_(ended_before), ~has_rows)
                      .execution_options(synchronize_session=False))
    db.commit()
    return int(done.rowcount or 0), int(gone.rowcount or 0)  # type: ignore[attr-defined]


def presence(db: Session, *, session_id: int, window_s: float, now: float | None = None) -> dict[str, int]:
    """Participants seen in the last ``window_s`` seconds, and how many of them showed a face."""
    since = (epoch_now() if now is None else now) - window_s
    present = db.scalar(select(func.count()).select_from(Participant).where(
        and_(Participant.session_id == session_id, Participant.last_seen >= since))) or 0
    faces = db.scalar(select(func.count(func.distinct(Observation.participant_id))).where(
        Observation.session_id == session_id, Observation.ts >= since)) or 0
    return {"present": int(present), "faces_visible": int(faces)}
