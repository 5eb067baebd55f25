"""Server-sent events through a real uvicorn server, with the in-process broker and with Redis."""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from classmood.benchmarks.servers import tls
from classmood.server.app import create_app
from classmood.server.threaded import ThreadedServer

from .conftest import REDIS_URL, World, build_world, make_settings, probs_of


def redis_or_skip() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis not reachable at {REDIS_URL}: {exc}")
    return REDIS_URL


class EventReader(threading.Thread):
    """Reads a session's SSE stream into a queue until the session's 'ended' status arrives."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.url, self.headers = url, headers
        self.events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()

    def run(self) -> None:
        event = ""
        with httpx.stream("GET", self.url, headers=self.headers, timeout=30, verify=tls()) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            for line in response.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
                    self.events.put((event, data))
                    if event == "status" and data["status"] == "ended":
                        return

    def next(self, kind: str, timeout: float = 15) -> dict[str, Any]:
        """The next event of this kind (others are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            event, data = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            if event == kind:
                return data

    def presence_reaches(self, present: int, faces: int, timeout: float = 15) -> bool:
        """Wait for a presence event with these counts (periodic ones may come first)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.next("presence", deadline - time.monotonic()) == {"present": present, "faces_visible": faces}:
                return True
        return False

    def drain(self) -> list[tuple[str, dict[str, Any]]]:
        """Every event read so far."""
        out = []
        while not self.events.empty():
            out.append(self.events.get_nowait())
        return out


@pytest.fixture(params=["memory", "redis"])
def servers(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> Iterator[tuple[str, str, Any]]:
    """(dashboard server URL, ingestion server URL, app): one server, or two sharing Redis and the database."""
    redis_url = redis_or_skip() if request.param == "redis" else ""
    first = create_app(make_settings(database_url, tmp_path / "data", redis_url=redis_url))
    apps = [first] + ([create_app(make_settings(database_url, tmp_path / "data", redis_url=redis_url))]
                      if redis_url else [])
    running = [ThreadedServer(app).start() for app in apps]
    try:
        yield running[0].url, running[-1].url, first
    finally:
        for server in running:
            server.stop()
        for app in apps:
            app.state.cm.engine.dispose()


def test_dashboard_receives_observations_presence_and_status(servers: tuple[str, str, Any],
                                                             astronaut_jpeg: bytes) -> None:
    dashboard_url, ingest_url, app = servers
    with (httpx.Client(base_url=dashboard_url, verify=tls()) as dashboard,
          httpx.Client(base_url=ingest_url, verify=tls()) as ingest):
        world = build_world(dashboard, app)  # type: ignore[arg-type]
        reader = EventReader(f"{dashboard_url}/api/sessions/{world.session_id}/live", world.teacher_a)
        reader.start()
        assert reader.next("status") == {"status": "live"}
        assert reader.next("presence") == {"present": 0, "faces_visible": 0}
        sent = time.time()
        response = ingest.post(f"/api/sessions/{world.session_id}/frames", content=astronaut_jpeg,
                               params={"ts": sent}, headers={**world.student, "Content-Type": "image/jpeg"})
        assert response.status_code == 200 and response.json()["faces"] == 1
        event = reader.next("observation")
        assert event["participant_id"] == world.participant_id and event["display_name"] == "Ann"
        assert event["label"] == response.json()["observations"][0]["label"] and event["sent_ts"] == sent
        assert event["client_id"] == response.json()["observations"][0]["client_id"]
        assert reader.presence_reaches(1, 1)
        dashboard.post(f"/api/sessions/{world.session_id}/end", headers=world.teacher_a)
        assert reader.next("status") == {"status": "ended"}
        reader.join(10)


def test_aggregate_only_sessions_stream_no_observations(servers: tuple[str, str, Any]) -> None:
    dashboard_url, ingest_url, app = servers
    with (httpx.Client(base_url=dashboard_url, verify=tls()) as dashboard,
          httpx.Client(base_url=ingest_url, verify=tls()) as ingest):
        world: World = build_world(dashboard, app)  # type: ignore[arg-type]
        dashboard.patch(f"/api/sessions/{world.session_id}", json={"aggregate_only": True}, headers=world.teacher_a)
        reader = EventReader(f"{dashboard_url}/api/sessions/{world.session_id}/live", world.teacher_a)
        reader.start()
        reader.next("presence")
        body = {"observations": [{"id": str(uuid.uuid4()), "ts": time.time(), "probs": probs_of("Sad")}]}
        assert ingest.post(f"/api/sessions/{world.session_id}/observations", json=body,
                           headers=world.student).json()["accepted"] == 1
        assert reader.presence_reaches(1, 1)
        dashboard.post(f"/api/sessions/{world.session_id}/end", headers=world.teacher_a)
        reader.join(15)
        assert not reader.is_alive()
        assert [e for e, _ in reader.drain()].count("observation") == 0


def test_live_stream_needs_the_courses_teacher(servers: tuple[str, str, Any]) -> None:
    dashboard_url, _, app = servers
    with httpx.Client(base_url=dashboard_url, verify=tls()) as client:
        world = build_world(client, app)  # type: ignore[arg-type]
        url = f"/api/sessions/{world.session_id}/live"
        assert client.get(url).status_code == 401
        assert client.get(url, headers=world.teacher_b).status_code == 403
        assert client.get(url, headers=world.student).status_code == 403
