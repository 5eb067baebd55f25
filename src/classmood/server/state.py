"""What a running server shares: built once by ``create_app`` (``app.build_state``), kept on ``app.state.cm``.

Ingestion, the stream and the live channel take a :class:`ServerState`; HTTP routes get it through
``deps.StateDep``. Each feature's own running state is a typed object of that feature, built in
``build_state``; ingestion reaches the live feature's presence through here, so no feature imports upward.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from classmood.config import Settings
from classmood.server.live.broker import Broker
from classmood.server.live.presence import PresenceThrottle
from classmood.server.observations.analysis import AnalysisPool
from classmood.server.observations.group_writer import GroupWriters
from classmood.server.observations.limits import RateLimiter
from classmood.server.observations.standing import Standings
from classmood.server.security import Passwords, Signer
from classmood.server.sessions.cache import ParticipantCache


@dataclass
class ServerState:
    """The settings, database, signer, password hasher, live broker and each feature's running state."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    signer: Signer
    passwords: Passwords
    broker: Broker
    analysis: AnalysisPool
    rate: RateLimiter
    writers: GroupWriters  # group commit of device batches, one writer per event loop
    presence: PresenceThrottle  # publishes a session's presence after activity, throttled
    participants: ParticipantCache  # participant token -> row: the batch endpoint's token check without a query
    standings: Standings  # whether each session's open student streams may go on (cached per session)
