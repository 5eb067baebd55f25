"""The aggregate-only rules hold for every route: no answer, alone or combined, shows a small private group.

The private session's students only ever look "Disgust" and are called "Hidden…"; nothing else in the
world does. Any answer that carries a Disgust count, a Disgust label or a hidden name leaks.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import update

from classmood.labels import LABELS
from classmood.server.sessions.models import ClassSession

from .conftest import World, arrived_when_seen, probs_of

MARK = "Disgust"  # the private session's only emotion
# Streams never end by themselves; their aggregate-only rule (no observation events) is tested in test_live.
NOT_WALKED = {"/api/sessions/{session_id}/live"}


def send(world: World, header: dict[str, str], label: str, n: int = 2, session_id: int | None = None,
         ago_s: float = 0.0, at: float | None = None) -> None:
    now = time.time() - ago_s if at is None else at
    body = {"observations": [{"id": str(uuid.uuid4()), "ts": now - i, "probs": probs_of(label)} for i in range(n)]}
    sid = session_id or world.session_id
    response = world.client.post(f"/api/sessions/{sid}/observations", json=body, headers=header)
    assert response.status_code == 200 and response.json()["accepted"] == n, response.text


def private_session(world: World, students: int) -> tuple[int, str, list[tuple[dict[str, str], int]]]:
    """A live aggregate-only session of world's course; ``students`` hidden students sent Disgust scores."""
    created = world.client.post(f"/api/courses/{world.course_id}/sessions", headers=world.teacher_a,
                                json={"title": "Quiet", "aggregate_only": True}).json()
    world.client.post(f"/api/sessions/{created['id']}/start", headers=world.teacher_a)
    people = [world.join(f"Hidden{k}", code=created["code"]) for k in range(students)]
    for header, _ in people:
        send(world, header, MARK, session_id=created["id"], at=quiet_ts(world, created["id"]))
    return created["id"], created["code"], people


def quiet_ts(world: World, sid: int) -> float:
    """When the private session's scores were seen: inside one minute cell before its start, the same minute
    for every student whenever they send (derived from the start, not from the clock)."""
    started = world.client.get(f"/api/sessions/{sid}", headers=world.teacher_a).json()["started_at"]
    start = datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp()
    return (start - 150) // 60 * 60 + 30


def arrived(world: World, sid: int) -> None:
    """Place the private session's rows in the cells of their own times (see arrived_when_seen)."""
    arrived_when_seen(world.client.app, sid)  # type: ignore[attr-defined]


@pytest.fixture
def mixed(world: World) -> tuple[World, int, str, int]:
    """World's public session (Ann: Happy, Bob: Neutral) next to a private one with two hidden students."""
    send(world, world.student, "Happy")
    bob, _ = world.join("Bob")
    send(world, bob, "Neutral")
    sid, code, people = private_session(world, students=2)
    return world, sid, code, people[0][1]


def leaks(value: Any) -> list[str]:
    """What in a JSON answer comes from the private session."""
    found: list[str] = []
    if isinstance(value, dict):
        if isinstance(value.get("counts"), dict) and value["counts"].get(MARK, 0):
            found.append(f"counts {value['counts']}")
        for key in ("last_label", "now_label"):
            if value.get(key) == MARK:
                found.append(key)
        for item in value.values():
            found += leaks(item)
    elif isinstance(value, list):
        for item in value:
            found += leaks(item)
    elif isinstance(value, str) and value.startswith("Hidden"):
        found.append(value)
    return found


def get_routes(app: Any) -> dict[str, dict[str, Any]]:
    """Every GET route of the API, from the app's OpenAPI document: {path: operation}."""
    return {path: ops["get"] for path, ops in app.openapi()["paths"].items() if "get" in ops}


def analytics_paths(app: Any) -> set[str]:
    return {path for path, op in get_routes(app).items() if "analytics" in op.get("tags", [])}


def test_no_route_shows_a_small_private_group(mixed: tuple[World, int, str, int], app: Any) -> None:
    world, sid, code, hidden_id = mixed
    values = {"session_id": sid, "course_id": world.course_id, "teacher_id": world.teacher_a_id, "code": code,
              "participant_id": hidden_id}
    walked: set[str] = set()
    for route, operation in get_routes(app).items():
        if route in NOT_WALKED:
            continue
        names = [p["name"] for p in operation.get("parameters", []) if p["in"] == "path"]
        assert set(names) <= set(values), f"{route}: teach this test a value for {names}"
        path = route.format(**{n: values[n] for n in names})
        for who in (world.teacher_a, world.admin):
            for params in ({}, {"participant_id": hidden_id}, {"since": time.time() - 3600}, {"smooth_s": 3}):
                response = world.client.get(path, headers=who, params=params)
                assert response.status_code < 500, (path, response.text)
                if response.status_code != 200:
                    continue
                walked.add(route)
                if "json" in response.headers["content-type"]:
                    assert leaks(response.json()) == [], (path, params, response.text[:300])
                else:
                    assert "Hidden" not in response.text and f",{MARK}," not in response.text, (path, params)
    assert len(analytics_paths(app)) >= 8
    assert analytics_paths(app) - walked <= {
        "/api/sessions/{session_id}/participants", "/api/sessions/{session_id}/export.csv"}
    assert {"/api/sessions/{session_id}/histogram", "/api/platform/overview"} <= walked


def test_totals_cannot_be_subtracted_down_to_a_small_private_session(mixed: tuple[World, int, str, int]) -> None:
    world, sid, code, _ = mixed

    def counts(path: str) -> dict[str, int]:
        answer = world.client.get(path, headers=world.admin).json()
        return answer["counts"] or dict.fromkeys(LABELS, 0)

    public = counts(f"/api/sessions/{world.session_id}/histogram")
    assert counts(f"/api/sessions/{sid}/histogram") == dict.fromkeys(LABELS, 0)  # suppressed: 2 < 3 students
    for total in (f"/api/courses/{world.course_id}/histogram", f"/api/teachers/{world.teacher_a_id}/histogram",
                  "/api/platform/histogram"):
        difference = {label: counts(total)[label] - public[label] for label in LABELS}
        assert difference == dict.fromkeys(LABELS, 0), total  # the attack finds nothing
    # With a third student the session is shown on its own, and the totals include it again.
    third, _ = world.join("Hidden2", code=code)
    send(world, third, MARK, session_id=sid, at=quiet_ts(world, sid))
    arrived(world, sid)
    shown = counts(f"/api/sessions/{sid}/histogram")
    assert shown[MARK] == 6
    assert counts(f"/api/courses/{world.course_id}/histogram")[MARK] == 6
    # ... but not over a range that does not overlap the cells in which the three of them were seen.
    course = world.client.get(f"/api/courses/{world.course_id}/histogram", headers=world.admin,
                              params={"since": time.time() - 60}).json()
    assert course["counts"].get(MARK, 0) == 0


def test_aggregate_only_is_a_one_way_door_for_data(mixed: tuple[World, int, str, int], app: Any) -> None:
    world, sid, _, hidden_id = mixed
    url = f"/api/sessions/{sid}"
    reopened = world.client.patch(url, json={"aggregate_only": False}, headers=world.teacher_a)
    assert reopened.status_code == 409 and "aggregate-only" in reopened.text
    # Even if the flag is cleared behind the API's back, the data gathered under it stays private.
    with app.state.cm.sessions() as db:
        db.execute(update(ClassSession).where(ClassSession.id == sid).values(aggregate_only=False))
        db.commit()
    for path in ("participants", "export.csv"):
        assert world.client.get(f"{url}/{path}", headers=world.teacher_a).status_code == 403
    single = world.client.get(f"{url}/histogram", headers=world.teacher_a, params={"participant_id": hidden_id})
    assert single.status_code == 403
    assert world.client.get(f"{url}/histogram", headers=world.teacher_a).json()["suppressed"] is True
    assert world.client.get(f"/api/join/{world.code}").json()["aggregate_only"] is False
    # A session that gathered nothing under aggregate-only may still switch it off.
    fresh = world.client.post(f"/api/courses/{world.course_id}/sessions", headers=world.teacher_a,
                              json={"title": "Later", "aggregate_only": True}).json()
    back = world.client.patch(f"/api/sessions/{fresh['id']}", json={"aggregate_only": False},
                              headers=world.teacher_a)
    assert back.status_code == 200 and back.json()["aggregate_only"] is False
