"""A server-analysed frame is announced with the session's settings as the group writer read them when storing it,
not as they were before analysis: a session turned aggregate-only meanwhile sends no per-student event."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from classmood.server.sessions.models import ClassSession

from .conftest import World


def _record_events(app: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The kinds of the live events the server publishes (the real broker still gets them)."""
    broker, kinds = app.state.cm.broker, []
    publish = broker.publish

    async def recording(session_id: int, kind: str, data: dict[str, Any]) -> None:
        kinds.append(kind)
        await publish(session_id, kind, data)

    monkeypatch.setattr(broker, "publish", recording)
    return kinds


def _post_frame(client: TestClient, world: World, jpeg: bytes) -> int:
    r = client.post(f"/api/sessions/{world.session_id}/frames", content=jpeg,
                    headers={**world.student, "Content-Type": "image/jpeg"})
    assert r.status_code == 200, r.text
    return len(r.json()["observations"])


def test_a_frame_is_announced_per_student(client: TestClient, world: World, app: Any, astronaut_jpeg: bytes,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    kinds = _record_events(app, monkeypatch)
    assert _post_frame(client, world, astronaut_jpeg) == 1
    assert kinds.count("observation") == 1


def test_turning_aggregate_only_during_analysis_silences_that_frame(
        client: TestClient, world: World, app: Any, astronaut_jpeg: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    state, kinds = app.state.cm, _record_events(app, monkeypatch)
    analyze = state.analysis.analyze

    async def then_aggregate_only(*args: Any, **kwargs: Any) -> Any:
        faces = await analyze(*args, **kwargs)  # the real analysis; the teacher's switch lands right after it
        with state.sessions() as db:
            db.execute(update(ClassSession).where(ClassSession.id == world.session_id).values(aggregate_only=True))
            db.commit()
        return faces

    monkeypatch.setattr(state.analysis, "analyze", then_aggregate_only)
    assert _post_frame(client, world, astronaut_jpeg) == 1  # stored (aggregate-only keeps the data)
    assert "observation" not in kinds
