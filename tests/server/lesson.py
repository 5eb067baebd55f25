"""Helpers of the issue-22 tests: a lesson laid out in the past, with known emotions per student and minute."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from classmood.server.sessions.models import ClassSession

from .conftest import World, probs_of

CALM = ("Happy", "Neutral")
UNHAPPY = ("Sad", "Angry", "Fear")


def started_at(app: Any, session_id: int, epoch: float) -> None:
    """Pretend the session went live at ``epoch`` (observations and topics must lie within the session)."""
    with app.state.cm.sessions() as db:
        db.execute(update(ClassSession).where(ClassSession.id == session_id)
                   .values(started_at=datetime.fromtimestamp(epoch, UTC)))
        db.commit()


def ended_at(app: Any, session_id: int, epoch: float) -> None:
    """Pretend the session ended at ``epoch``."""
    with app.state.cm.sessions() as db:
        db.execute(update(ClassSession).where(ClassSession.id == session_id)
                   .values(status="ended", ended_at=datetime.fromtimestamp(epoch, UTC) + timedelta(0)))
        db.commit()


def send(world: World, header: dict[str, str], session_id: int, items: list[tuple[float, str]],
         no_face: list[float] | None = None) -> dict[str, Any]:
    """Post scores (and no-face samples) in batches of 500; assert they were all stored; the last answer."""
    answer: dict[str, Any] = {}
    for k in range(0, max(len(items), 1), 500):
        body: dict[str, Any] = {"observations": [{"id": str(uuid.uuid4()), "ts": ts, "probs": probs_of(label)}
                                                 for ts, label in items[k:k + 500]]}
        if no_face and k == 0:
            body["no_face"] = [{"id": str(uuid.uuid4()), "ts": ts} for ts in no_face]
        response = world.client.post(f"/api/sessions/{session_id}/observations", json=body, headers=header)
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] == len(body["observations"]), response.text
        answer = dict(response.json())
    return answer


def spread(start: float, seconds: int, labels: tuple[str, ...], offset: float = 0.0) -> list[tuple[float, str]]:
    """One reading a second from ``start`` for ``seconds`` seconds, cycling through ``labels``."""
    return [(start + k + offset, labels[k % len(labels)]) for k in range(seconds)]


def get(world: World, path: str, header: dict[str, str] | None = None, **params: Any) -> Any:
    """GET a JSON answer that must be 200."""
    response = world.client.get(path, headers=header or world.teacher_a, params=params)
    assert response.status_code == 200, response.text
    return response.json()
