"""The agent's spool: undelivered scores, and the participant they belong to, kept across restarts.

One JSON object per line. The first line may be ``{"participant": {...}}``: the server, join code,
participant id, session id and token of the participant the agent joined as. A restarted agent
resumes as that participant instead of joining again, so the ids it sends a second time (scores
delivered just before a crash, before the spool was rewritten) are recognised as duplicates: they
belong to the same participant.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from classmood.agent.client import Joined, Pending


class Spool:
    """Scores not yet delivered, and the participant, in a JSONL file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _lines(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def load(self) -> list[Pending]:
        """Items left by an earlier run."""
        return [Pending(raw["id"], raw["ts"], raw["probs"], raw.get("score"))
                for raw in self._lines() if "participant" not in raw]

    def participant(self, server: str) -> Joined | None:
        """The participant an earlier run joined as on ``server``, if any."""
        for raw in self._lines()[:1]:
            saved = raw.get("participant")
            if saved and saved.get("server") == server:
                return Joined(int(saved["participant_id"]), int(saved["session_id"]), str(saved["token"]),
                              str(saved.get("code", "")))
        return None

    def remember(self, server: str, joined: Joined) -> None:
        """Record the participant (first line), keeping the items."""
        self._write(self.load(), {"server": server, "participant_id": joined.participant_id,
                                  "session_id": joined.session_id, "token": joined.token, "code": joined.code})

    def append(self, items: Iterable[Pending]) -> None:
        """Record new items (scores only: frames are never written to disk)."""
        with self.path.open("a") as handle:
            for item in items:
                handle.write(json.dumps(item.as_json()) + "\n")

    def rewrite(self, items: list[Pending]) -> None:
        """Keep only ``items`` (after a delivery), and the participant line."""
        header = next((raw["participant"] for raw in self._lines()[:1] if "participant" in raw), None)
        self._write(items, header)

    def _write(self, items: list[Pending], participant: dict[str, Any] | None) -> None:
        # Write a new file and rename it over the old one: a crash mid-write never loses the spool.
        lines = [json.dumps({"participant": participant})] if participant else []
        lines += [json.dumps(item.as_json()) for item in items if item.frame is None]
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.write_text("".join(line + "\n" for line in lines))
        os.replace(tmp, self.path)
