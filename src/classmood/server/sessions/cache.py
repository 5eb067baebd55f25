"""The participant rows of recent participant tokens, so that device batches skip the token's query.

>>> cache, ann = ParticipantCache(), Participant(display_name="Ann")
>>> cache.put("token", ann, now=0.0)
>>> cache.get("token", now=1.0) is ann, cache.get("token", now=ParticipantCache.TTL_S), cache.get("x", now=1.0)
(True, None, None)
"""

from __future__ import annotations

from classmood.server.sessions.models import Participant


class ParticipantCache:
    """Participant token -> its participant row, each kept :data:`TTL_S` seconds (monotonic clock).

    Safe because a participant is deleted only with (or after the end of) its session, and every batch is
    refused unless its session is live (checked in the batch's own transaction); the token's signature and
    expiry are still checked at every request.
    """

    TTL_S = 30.0
    MAX_ENTRIES = 50_000  # bounded: past it, expired entries are forgotten

    def __init__(self) -> None:
        self._rows: dict[str, tuple[float, Participant]] = {}

    def get(self, token: str, *, now: float) -> Participant | None:
        """The cached participant of this token, or None when absent or older than TTL_S."""
        hit = self._rows.get(token)
        return hit[1] if hit is not None and hit[0] > now else None

    def put(self, token: str, participant: Participant, *, now: float) -> None:
        """Remember the token's participant for TTL_S seconds from ``now``."""
        if len(self._rows) > self.MAX_ENTRIES:
            self._rows = {k: v for k, v in self._rows.items() if v[0] > now}
        self._rows[token] = (now + self.TTL_S, participant)
