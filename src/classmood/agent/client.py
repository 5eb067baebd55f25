"""The agent's HTTP calls to a ClassMood server (its public API only; no server code is imported)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx


class SessionEnded(RuntimeError):
    """The server says the session has ended (409): nothing more will be accepted."""


class Rejected(RuntimeError):
    """The server refused a request for good (4xx other than 409/429): retrying would not help."""


@dataclass(frozen=True)
class Joined:
    """A joined session: the participant's id, the session, its token, and the code it was joined with."""

    participant_id: int
    session_id: int
    token: str
    code: str = ""


@dataclass(frozen=True)
class Pending:
    """One item waiting to be delivered: scores of a face, or (``send_frames``) a JPEG frame."""

    client_id: str
    ts: float
    probs: dict[str, float] | None = None
    score: float | None = None
    frame: bytes | None = field(default=None, repr=False)

    def as_json(self) -> dict[str, Any]:
        """The observation as the batch endpoint takes it."""
        return {"id": self.client_id, "ts": self.ts, "probs": self.probs, "score": self.score}


def normal_code(code: str) -> str:
    """A join code as the server compares it (case and spaces ignored).

    >>> normal_code(" ab c23 ")
    'ABC23'
    """
    return "".join(code.split()).upper()


class ServerClient:
    """HTTP calls of the agent. Transport errors and 5xx/429 raise ``httpx`` errors (retry later)."""

    def __init__(self, base_url: str, timeout_s: float = 10.0, transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout_s, transport=transport)

    def _check(self, response: httpx.Response) -> dict[str, Any]:
        if response.status_code == 409:
            raise SessionEnded(response.json().get("detail", "the session has ended"))
        if response.status_code == 429 or response.status_code >= 500:
            response.raise_for_status()
        if response.status_code >= 400:
            raise Rejected(f"{response.status_code}: {response.text[:200]}")
        result: dict[str, Any] = response.json()
        return result

    def join(self, code: str, name: str) -> Joined:
        """Join a session (the caller has obtained the user's consent)."""
        body = self._check(self._http.post("/api/join", json={"code": code, "display_name": name, "consent": True}))
        return Joined(body["participant_id"], body["session_id"], body["token"], normal_code(code))

    def send_batch(self, joined: Joined, items: list[Pending]) -> tuple[int, int]:
        """Post scores; return (accepted, duplicates)."""
        body = self._check(self._http.post(f"/api/sessions/{joined.session_id}/observations",
                                           json={"observations": [item.as_json() for item in items]},
                                           headers={"Authorization": f"Bearer {joined.token}"}))
        return int(body["accepted"]), int(body["duplicates"])

    def send_frame(self, joined: Joined, item: Pending) -> int:
        """Post one frame; return the number of faces stored."""
        response = self._http.post(f"/api/sessions/{joined.session_id}/frames", content=item.frame,
                                   params={"client_id": item.client_id, "ts": item.ts},
                                   headers={"Authorization": f"Bearer {joined.token}", "Content-Type": "image/jpeg"})
        return int(self._check(response)["faces"])

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()
