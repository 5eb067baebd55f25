"""Course and platform trends on both databases; aggregate-only sessions count only through released cells."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from classmood.server.courses.trends import week_of

from .conftest import World
from .lesson import ended_at, get, send, spread, started_at

DAY = 86_400.0


def new_session(world: World, title: str, **extra: Any) -> tuple[int, str]:
    made = world.client.post(f"/api/courses/{world.course_id}/sessions", json={"title": title, **extra},
                             headers=world.teacher_a).json()
    assert world.client.post(f"/api/sessions/{made['id']}/start", headers=world.teacher_a).status_code == 200
    return made["id"], made["code"]


@pytest.fixture
def weeks(world: World, app: Any) -> tuple[World, dict[str, float], int]:
    """Cells 8 days ago (calm), Week 2 a day ago (a calm topic then an unhappy one), a small private one today."""
    now = time.time()
    starts = {"Cells": now - 8 * DAY, "Week 2": now - DAY}
    started_at(app, world.session_id, starts["Cells"])
    send(world, world.student, world.session_id, spread(starts["Cells"], 30, ("Happy",)))
    ended_at(app, world.session_id, starts["Cells"] + 3600)
    sid, code = new_session(world, "Week 2")
    started_at(app, sid, starts["Week 2"])
    for k in range(2):
        header = world.join(f"W{k}", code=code)[0]
        calm, sad = spread(starts["Week 2"], 20, ("Neutral",)), spread(starts["Week 2"] + 60, 20, ("Sad",))
        send(world, header, sid, calm + sad)
    for title, at in (("Reading", starts["Week 2"]), ("Quiz", starts["Week 2"] + 60)):
        made = world.client.post(f"/api/sessions/{sid}/topics", json={"title": title, "start": at},
                                 headers=world.teacher_a)
        assert made.status_code == 201, made.text
    private, pcode = new_session(world, "Quiet", aggregate_only=True)
    for k in range(2):  # two students: fewer than min_faces=3
        send(world, world.join(f"Hidden{k}", code=pcode)[0], private, [(time.time() - 1, "Disgust")])
    world.client.post(f"/api/courses/{world.course_id}/sessions", json={"title": "Never started"},
                      headers=world.teacher_a)
    return world, starts, private


def test_course_trend(weeks: tuple[World, dict[str, float], int]) -> None:
    world, starts, private = weeks
    trend = get(world, f"/api/courses/{world.course_id}/trend")
    assert trend["course_id"] == world.course_id and trend["title"] == "Biology"
    rows = trend["sessions"]
    assert [r["title"] for r in rows] == ["Cells", "Week 2", "Quiet"]  # oldest first; never started: left out
    cells, week2, quiet = rows
    assert cells["total"] == 30 and cells["participants"] == 1 and cells["negative_share"] == 0
    assert cells["shares"]["Happy"] == 1 and cells["topics"] == [] and cells["ended_at"] is not None
    assert datetime.fromisoformat(cells["started_at"]).timestamp() == pytest.approx(starts["Cells"], abs=1e-3)
    assert week2["total"] == 80 and week2["participants"] == 2 and week2["negative_share"] == 0.5
    assert [(t["title"], t["negative_share"], t["total"]) for t in week2["topics"]] == [("Reading", 0, 40),
                                                                                        ("Quiz", 1, 40)]
    assert quiet["session_id"] == private and quiet["suppressed"] is True and quiet["negative_share"] is None
    assert quiet["total"] == 0 and quiet["shares"] == {}
    assert world.client.get(f"/api/courses/{world.course_id}/trend", headers=world.teacher_b).status_code == 403
    assert world.client.get(f"/api/courses/{world.course_id}/trend", headers=world.admin).status_code == 200
    assert world.client.get(f"/api/courses/{2**31 - 1}/trend", headers=world.teacher_a).status_code == 404


def test_platform_trend(weeks: tuple[World, dict[str, float], int]) -> None:
    world, starts, _ = weeks
    trend = get(world, "/api/platform/trend", header=world.admin, weeks=4)
    this_week = week_of(datetime.now(UTC))
    assert len(trend["weeks"]) == 4 and trend["weeks"][-1] == this_week.isoformat()
    (course,) = trend["courses"]
    assert course["title"] == "Biology" and course["teacher"] == "Teacher A"
    by_week: dict[str, list[dict[str, Any]]] = {}
    for row in course["weeks"]:
        by_week.setdefault(row["week"], []).append(row)
    assert sum(r["sessions"] for r in course["weeks"]) == 3
    assert sum(r["total"] for r in course["weeks"]) == 110  # the small private session adds nothing
    assert all(r["shares"].get("Disgust", 0) == 0 for r in course["weeks"])
    cells_week = week_of(datetime.fromtimestamp(starts["Cells"], UTC)).isoformat()
    assert cells_week in by_week and by_week[cells_week][0]["shares"]["Happy"] > 0
    one = get(world, "/api/platform/trend", header=world.admin, weeks=1)
    assert one["weeks"] == [this_week.isoformat()]
    assert all(r["week"] == this_week.isoformat() for c in one["courses"] for r in c["weeks"])
    assert world.client.get("/api/platform/trend", headers=world.teacher_a).status_code == 403
    assert world.client.get("/api/platform/trend", headers=world.admin, params={"weeks": 0}).status_code == 422
