"""Presence: how many participants of a session are there, and how many show a face.

Dashboards learn it two ways, both over the live channel:

- after activity: ingestion calls :meth:`PresenceThrottle.after_activity` for each stored frame or batch, and
  the counts are published at most every :data:`PUBLISH_EVERY_S` per session and server process (a class of
  hundreds sends hundreds of scores a second; the counts need one query);
- on a clock: each live stream sends them every :data:`REFRESH_EVERY_S`, so students who leave are seen to
  leave even when nobody sends anything.

>>> presence_window(1.0), presence_window(5.0)
(10.0, 15.0)
"""

from __future__ import annotations

import time

from anyio import to_thread
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, sessionmaker

from classmood.server.db import epoch_now
from classmood.server.live.broker import Broker
from classmood.server.observations.models import Observation
from classmood.server.sessions.models import Participant

PUBLISH_EVERY_S = 1.0
REFRESH_EVERY_S = 5.0


def presence_window(frame_interval_s: float) -> float:
    """How recent a frame must be for its sender to count as present."""
    return max(10.0, 3 * frame_interval_s)


def presence(db: Session, *, session_id: int, window_s: float, now: float | None = None) -> dict[str, int]:
    """Participants seen in the last ``window_s`` seconds, and how many of them showed a face."""
    since = (epoch_now() if now is None else now) - window_s
    present = db.scalar(select(func.count()).select_from(Participant).where(
        and_(Participant.session_id == session_id, Participant.last_seen >= since))) or 0
    faces = db.scalar(select(func.count(func.distinct(Observation.participant_id))).where(
        Observation.session_id == session_id, Observation.ts >= since)) or 0
    return {"present": int(present), "faces_visible": int(faces)}


class PresenceThrottle:
    """A session's presence now, and published after activity at most every :data:`PUBLISH_EVERY_S` (per process)."""

    def __init__(self, sessions: sessionmaker[Session], broker: Broker) -> None:
        self._sessions = sessions
        self._broker = broker
        self._sent: dict[int, float] = {}  # session id -> when this process last published its presence

    def counts(self, session_id: int, frame_interval_s: float) -> dict[str, int]:
        """Present participants and visible faces of a session, from the database (blocking)."""
        with self._sessions() as db:
            return presence(db, session_id=session_id, window_s=presence_window(frame_interval_s))

    async def after_activity(self, session_id: int, frame_interval_s: float) -> None:
        """Publish the session's presence unless this process did so less than PUBLISH_EVERY_S ago."""
        now = time.monotonic()
        if now - self._sent.get(session_id, 0.0) < PUBLISH_EVERY_S:
            return
        self._sent[session_id] = now
        counts = await to_thread.run_sync(self.counts, session_id, frame_interval_s)
        await self._broker.publish(session_id, "presence", counts)
