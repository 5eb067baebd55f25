"""Whether an open student stream may go on: its token is unexpired, its participant still exists, and its
session has not ended.

The stream checks at connect only once; an idle student (camera off, page in the background) would otherwise
keep a socket of an ended class or of a deleted participant open for as long as the page stays. So every
stream asks :func:`standing` every ``live_check_s`` (a setting, 2 s by default). The answer per session (its
status and the ids of its participants) is kept for as long (:class:`Standings`, one per server), so a class of
2,000 students costs one pair of indexed queries per session and period, not one per student.

>>> SessionStanding(fetched=0.0, status="ended", participants=frozenset({1})).reason(1)
'session_over'
>>> SessionStanding(fetched=0.0, status="live", participants=frozenset({1})).reason(2)
'removed'
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from anyio import to_thread
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from classmood.server.errors import database_outage
from classmood.server.sessions.models import ClassSession, Participant

if TYPE_CHECKING:
    from classmood.server.state import ServerState

MAX_SESSIONS = 10_000  # cached sessions before the ones nobody asked about for a while are forgotten
Reason = Literal["session_over", "removed", "expired"]


@dataclass(frozen=True)
class SessionStanding:
    """A session's status (``None``: deleted) and its participants, as read at ``fetched`` (monotonic)."""

    fetched: float
    status: str | None
    participants: frozenset[int]

    def reason(self, participant_id: int) -> Reason | None:
        """Why the participant's stream must close, or ``None`` while it may go on."""
        if self.status is None or self.status == "ended":
            return "session_over"
        return None if participant_id in self.participants else "removed"


def _read(sessions: sessionmaker[Session], session_id: int) -> SessionStanding:
    with sessions() as db:
        status = db.scalar(select(ClassSession.status).where(ClassSession.id == session_id))
        ids = frozenset(db.scalars(select(Participant.id).where(Participant.session_id == session_id)))
    return SessionStanding(time.monotonic(), status, ids)


class Standings:
    """Each session's :class:`SessionStanding`, read at most once per ``every_s`` (one per server): a stream
    closes at most about twice this long after its right ended."""

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self._known: dict[int, SessionStanding] = {}

    async def reason(self, sessions: sessionmaker[Session], *, session_id: int,
                     participant_id: int) -> Reason | None:
        """Why this participant's stream must close now, or ``None`` (an answer at most a period old)."""
        known = self._known.get(session_id)
        now = time.monotonic()
        if known is None or now - known.fetched >= self.every_s:
            if known is not None:  # the other streams of the session use the old answer while this one reads
                self._known[session_id] = SessionStanding(now, known.status, known.participants)
            try:
                known = self._known[session_id] = await to_thread.run_sync(_read, sessions, session_id)
            except Exception as exc:
                if database_outage(exc) is None:
                    raise
                # The database is down for now: nothing can be stored meanwhile anyway, so the stream stays
                # open (its student's outbox keeps the scores) and the next period asks again.
                return known.reason(participant_id) if known is not None else None
            if len(self._known) > MAX_SESSIONS:
                self._known = {k: v for k, v in self._known.items() if now - v.fetched < 10 * self.every_s}
        return known.reason(participant_id)


async def standing(state: ServerState, *, session_id: int, participant_id: int, token: str) -> Reason | None:
    """Why this participant's stream must close now (its token expired, or see :class:`Standings`), or ``None``."""
    if state.signer.verify("participant", token) is None:
        return "expired"
    return await state.standings.reason(state.sessions, session_id=session_id, participant_id=participant_id)
