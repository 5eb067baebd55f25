"""Alerts that last, on both databases: the rule is the session's, the server fires it with no dashboard open,
two server processes fire each episode once, and the live channel carries it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from classmood.server.app import create_app
from classmood.server.threaded import ThreadedServer

from .conftest import World, build_world, make_settings
from .lesson import get, send
from .test_live import EventReader


def wait_for(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    """Poll ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.05)
    raise AssertionError("condition not reached")


@pytest.fixture
def two_servers(database_url: str, tmp_path: Path) -> Iterator[tuple[World, TestClient]]:
    """Two server processes' apps on one database, both evaluating alerts every 0.1 s; no dashboard anywhere."""
    apps = [create_app(make_settings(database_url, tmp_path / "data", alert_check_s=0.1)) for _ in range(2)]
    with TestClient(apps[0]) as first, TestClient(apps[1]) as second:
        yield build_world(first, apps[0]), second
    for app in apps:
        app.state.cm.engine.dispose()


def test_an_alert_fires_with_no_dashboard_connected(two_servers: tuple[World, TestClient]) -> None:
    world, _ = two_servers
    url = f"/api/sessions/{world.session_id}"
    session = get(world, url)
    assert session["alert_rule"] == {"negative_share": 0.5, "after_s": 60.0}  # the server's defaults
    rule = world.client.patch(url, json={"alert_negative_share": 0.6, "alert_after_s": 0.5}, headers=world.teacher_a)
    assert rule.status_code == 200 and rule.json()["alert_rule"] == {"negative_share": 0.6, "after_s": 0.5}
    assert world.client.patch(url, json={"alert_negative_share": 1.5}, headers=world.teacher_a).status_code == 422
    students = [world.student, world.join("Bob")[0], world.join("Cy")[0]]
    calm_at = time.time() - 10
    for header in students:
        send(world, header, world.session_id, [(calm_at, "Happy")])
    time.sleep(0.3)  # a few rounds of both servers (every 0.1 s): a calm class fires nothing
    assert get(world, f"{url}/alerts") == []
    sad_at = time.time()
    for header in students:
        send(world, header, world.session_id, [(sad_at, "Sad")])
    alerts = wait_for(lambda: get(world, f"{url}/alerts"))
    time.sleep(0.3)  # more rounds of both servers: the same episode never fires twice
    assert get(world, f"{url}/alerts") == alerts and len(alerts) == 1
    alert = alerts[0]
    assert alert["negative_share"] == 1 and alert["threshold"] == 0.6 and alert["after_s"] == 0.5
    assert alert["fired_at"] - alert["since"] >= 0.5 and alert["participants"] == 3 and alert["total"] == 3
    assert alert["text"].startswith("100 % of faces look angry, disgusted, afraid or sad for over")
    # Calm again, then unhappy again: a second episode, a second alert.
    for header in students:
        send(world, header, world.session_id, [(sad_at + 5, "Happy")])
    wait_for(lambda: _episode_closed(world))
    for header in students:
        send(world, header, world.session_id, [(sad_at + 10, "Fear")])
    later = wait_for(lambda: (answer := get(world, f"{url}/alerts"))[1:] and answer)
    assert later[0] == alert and later[1]["since"] > alert["fired_at"]
    assert world.client.get(f"{url}/alerts", headers=world.teacher_b).status_code == 403
    reset = world.client.patch(url, json={"alert_negative_share": None, "alert_after_s": None}, headers=world.teacher_a)
    assert reset.json()["alert_rule"] == {"negative_share": 0.5, "after_s": 60.0}


def _episode_closed(world: World) -> bool:
    from classmood.server.alerts.models import AlertEpisode

    app = world.client.app
    with app.state.cm.sessions() as db:  # type: ignore[attr-defined]
        return db.get(AlertEpisode, world.session_id).high_since is None  # type: ignore[no-any-return,union-attr]


def test_the_live_channel_carries_alerts_and_topics(database_url: str, tmp_path: Path) -> None:
    app = create_app(make_settings(database_url, tmp_path / "data", alert_check_s=0.1))
    server = ThreadedServer(app).start()
    try:
        with TestClient(app) as client:
            world = build_world(client, app)
            client.patch(f"/api/sessions/{world.session_id}", json={"alert_negative_share": 0.5, "alert_after_s": 0},
                         headers=world.teacher_a)
            reader = EventReader(f"{server.url}/api/sessions/{world.session_id}/live", world.teacher_a)
            reader.start()
            reader.next("status")
            send(world, world.student, world.session_id, [(time.time(), "Angry")])
            event = reader.next("alert")
            assert event["session_id"] == world.session_id and event["negative_share"] == 1
            assert get(world, f"/api/sessions/{world.session_id}/alerts") == [event]
            made = client.post(f"/api/sessions/{world.session_id}/topics", json={"title": "Quiz"},
                               headers=world.teacher_a).json()
            assert reader.next("topics") == {"topics": [made]}
            client.post(f"/api/sessions/{world.session_id}/end", headers=world.teacher_a)
    finally:
        server.stop()
        app.state.cm.engine.dispose()


def test_an_aggregate_only_session_alerts_on_released_cells_only(database_url: str, tmp_path: Path) -> None:
    """Cells of 3 s sealed 0.5 s after they end: the rule sees a cell only once it is released, and never a
    small group's."""
    app = create_app(make_settings(database_url, tmp_path / "data", alert_check_s=0.1, private_cell_s=3,
                                   private_seal_s=0.5))
    with TestClient(app) as client:
        world = build_world(client, app)
        made = client.post(f"/api/courses/{world.course_id}/sessions", headers=world.teacher_a,
                           json={"title": "Quiet", "aggregate_only": True}).json()
        sid = made["id"]
        client.post(f"/api/sessions/{sid}/start", headers=world.teacher_a)
        client.patch(f"/api/sessions/{sid}", json={"alert_negative_share": 0.5, "alert_after_s": 0},
                     headers=world.teacher_a)
        people = [world.join(f"Hidden{k}", code=made["code"])[0] for k in range(3)]
        alone = time.time()
        send(world, people[0], sid, [(alone, "Sad")])  # one student alone: never an alert
        time.sleep(max(0.0, (alone // 3 + 1) * 3 + 0.5 + 0.5 - time.time()))  # sealed, then evaluated often
        assert get(world, f"/api/sessions/{sid}/alerts") == []
        for header in people:
            send(world, header, sid, [(time.time(), "Sad")])
        (alert,) = wait_for(lambda: get(world, f"/api/sessions/{sid}/alerts"))
        assert alert["participants"] >= 3 and alert["negative_share"] == 1
    app.state.cm.engine.dispose()
