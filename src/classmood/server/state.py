"""What a running server shares: built once by ``create_app`` (``app.build_state``), kept on ``app.state.cm``.

Ingestion, the stream and the live channel take a :class:`ServerState`; HTTP routes get it through
``deps.StateDep``.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from classmood.config import Settings
from classmood.server.live.broker import Broker
from classmood.server.observations.analysis import AnalysisPool
from classmood.server.observations.limits import RateLimiter
from classmood.server.observations.standing import Standings
from classmood.server.security import Passwords, Signer


@dataclass
class ServerState:
    """The settings, database, signer, password hasher, live broker, analysis pool and rate limiter."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    signer: Signer
    passwords: Passwords
    broker: Broker
    analysis: AnalysisPool
    rate: RateLimiter
    # when each session's presence was last published by this process (throttling)
    presence_sent: dict[int, float] = field(default_factory=dict)
    # ingest.GroupWriter per event loop (group commit of device batches)
    writers: weakref.WeakKeyDictionary[object, object] = field(default_factory=weakref.WeakKeyDictionary)
    # participant token -> (expiry, participant): the batch endpoint's token check without a query each time
    participants: dict[str, tuple[float, Any]] = field(default_factory=dict)
    # whether each session's open student streams may go on (cached per session)
    standings: Standings = field(default_factory=Standings)
