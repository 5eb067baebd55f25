"""Analytics on known data: histograms, filters, timelines, per-participant figures, CSV, privacy."""

from __future__ import annotations

import csv
import io
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from classmood.labels import LABELS
from classmood.server.sessions.models import ClassSession

from .conftest import World, arrived_when_seen, probs_of


def send(world: World, header: dict[str, str], items: list[tuple[float, str]]) -> None:
    body = {"observations": [{"id": str(uuid.uuid4()), "ts": ts, "probs": probs_of(label)} for ts, label in items]}
    response = world.client.post(f"/api/sessions/{world.session_id}/observations", json=body, headers=header)
    assert response.json()["accepted"] == len(items), response.text


def started_ago(app: Any, session_id: int, seconds: float) -> None:
    """Pretend the session went live ``seconds`` ago (observations are accepted only from its start)."""
    with app.state.cm.sessions() as db:
        db.execute(update(ClassSession).where(ClassSession.id == session_id)
                   .values(started_at=datetime.now(UTC) - timedelta(seconds=seconds)))
        db.commit()


@pytest.fixture
def seeded(world: World, app: Any) -> tuple[World, float, int]:
    """Ann: Happy x3 at t0+0..2, Sad at t0+70. Bob: Neutral at t0+5 and t0+130. Cy joined, sent nothing."""
    t0 = (time.time() - 300) // 60 * 60
    started_ago(app, world.session_id, time.time() - t0)
    bob, bob_id = world.join("Bob")
    world.join("Cy")
    send(world, world.student, [(t0, "Happy"), (t0 + 1, "Happy"), (t0 + 2, "Happy"), (t0 + 70, "Sad")])
    send(world, bob, [(t0 + 5, "Neutral"), (t0 + 130, "Neutral")])
    return world, t0, bob_id


def get(world: World, path: str, header: dict[str, str] | None = None, **params: Any) -> Any:
    response = world.client.get(path, headers=header or world.teacher_a, params=params)
    assert response.status_code == 200, response.text
    return response.json() if "json" in response.headers["content-type"] else response.text


def counts(**given: int) -> dict[str, int]:
    return {label: given.get(label, 0) for label in LABELS}


def test_session_histogram_and_filters(seeded: tuple[World, float, int]) -> None:
    world, t0, bob_id = seeded
    url = f"/api/sessions/{world.session_id}/histogram"
    whole = get(world, url)
    assert whole["counts"] == counts(Happy=3, Sad=1, Neutral=2)
    assert whole["total"] == 6 and whole["participants"] == 2 and whole["suppressed"] is False
    assert whole["shares"]["Happy"] == pytest.approx(0.5) and sum(whole["shares"].values()) == pytest.approx(1)
    assert get(world, url, since=t0 + 60)["counts"] == counts(Sad=1, Neutral=1)
    assert get(world, url, since=t0, until=t0 + 5)["counts"] == counts(Happy=3)
    assert get(world, url, participant_id=bob_id)["counts"] == counts(Neutral=2)
    recent = get(world, url, last_s=time.time() - (t0 + 100))
    assert recent["counts"] == counts(Neutral=1) and recent["participants"] == 1
    assert world.client.get(url, headers=world.teacher_a, params={"since": 10, "until": 5}).status_code == 422


def test_timeline_fills_empty_buckets(seeded: tuple[World, float, int]) -> None:
    world, t0, _ = seeded
    url = f"/api/sessions/{world.session_id}/timeline"
    minute = get(world, url, bucket_s=60, since=t0, until=t0 + 180)
    assert minute["bucket_s"] == 60
    assert [b["start"] for b in minute["buckets"]] == [t0, t0 + 60, t0 + 120]
    assert [b["total"] for b in minute["buckets"]] == [4, 1, 1]
    assert minute["buckets"][0]["counts"] == counts(Happy=3, Neutral=1)
    half = get(world, url, bucket_s=30, since=t0, until=t0 + 180)
    assert [b["total"] for b in half["buckets"]] == [4, 0, 1, 0, 1, 0]
    assert half["buckets"][1]["shares"] == dict.fromkeys(LABELS, 0.0)
    # Without a range the session's start to now is covered, so the newest bucket is the current one.
    default = get(world, url, bucket_s=60)
    assert sum(b["total"] for b in default["buckets"]) == 6
    assert default["buckets"][0]["start"] == t0
    assert default["buckets"][-1]["start"] >= time.time() // 60 * 60 - 60
    too_many = world.client.get(url, headers=world.teacher_a, params={"bucket_s": 1, "since": 1.0})
    assert too_many.status_code == 422


def test_participants_summary(seeded: tuple[World, float, int]) -> None:
    world, t0, bob_id = seeded
    rows = {r["display_name"]: r for r in get(world, f"/api/sessions/{world.session_id}/participants")}
    assert set(rows) == {"Ann", "Bob", "Cy"}
    assert rows["Ann"]["observations"] == 4 and rows["Ann"]["last_label"] == "Sad"
    assert rows["Ann"]["last_ts"] == pytest.approx(t0 + 70) and rows["Ann"]["counts"] == counts(Happy=3, Sad=1)
    assert rows["Bob"]["participant_id"] == bob_id and rows["Bob"]["last_label"] == "Neutral"
    assert rows["Cy"]["observations"] == 0 and rows["Cy"]["last_label"] is None
    later = {r["display_name"]: r for r in get(world, f"/api/sessions/{world.session_id}/participants",
                                                since=t0 + 100)}
    assert later["Ann"]["observations"] == 0 and later["Ann"]["last_ts"] is None
    assert later["Bob"]["observations"] == 1 and later["Bob"]["last_ts"] == pytest.approx(t0 + 130)


def test_csv_export(seeded: tuple[World, float, int]) -> None:
    world, t0, _ = seeded
    response = world.client.get(f"/api/sessions/{world.session_id}/export.csv", headers=world.teacher_a)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 6
    assert [r["label"] for r in rows] == ["Happy", "Happy", "Happy", "Neutral", "Sad", "Neutral"]
    assert rows[0]["display_name"] == "Ann" and float(rows[0]["ts"]) == pytest.approx(t0)
    assert float(rows[0]["p_happy"]) == pytest.approx(0.7) and rows[0]["source"] == "device"
    assert len({r["client_id"] for r in rows}) == 6


def test_aggregate_only_mode(seeded: tuple[World, float, int], app: Any) -> None:
    world, t0, bob_id = seeded
    sid = world.session_id
    world.client.patch(f"/api/sessions/{sid}", json={"aggregate_only": True}, headers=world.teacher_a)
    arrived_when_seen(app, sid)  # minute cells: t0 has Ann and Bob, t0+60 Ann alone, t0+120 Bob alone
    hidden = get(world, f"/api/sessions/{sid}/histogram")
    assert hidden == {"counts": {}, "shares": {}, "total": 0, "participants": 0, "suppressed": True}
    for path in ("participants", "export.csv"):
        assert world.client.get(f"/api/sessions/{sid}/{path}", headers=world.teacher_a).status_code == 403
    single = world.client.get(f"/api/sessions/{sid}/histogram", headers=world.admin,
                              params={"participant_id": bob_id})
    assert single.status_code == 403
    dana, _ = world.join("Dana")
    send(world, dana, [(t0 + 3, "Surprise")])
    arrived_when_seen(app, sid)
    # Three participants in the first minute reach min_faces=3; the later minutes, one person each, stay out.
    shown = get(world, f"/api/sessions/{sid}/histogram")
    assert shown["suppressed"] is False and shown["counts"] == counts(Happy=3, Neutral=1, Surprise=1)
    assert shown["participants"] == 3
    buckets = get(world, f"/api/sessions/{sid}/timeline", bucket_s=60, since=t0, until=t0 + 180)["buckets"]
    assert [b["suppressed"] for b in buckets] == [False, True, True]
    assert buckets[0]["total"] == 5 and buckets[1]["counts"] == {}
    course = get(world, f"/api/courses/{world.course_id}/histogram")
    assert course["suppressed"] is False and course["total"] == 5


def test_course_teacher_and_platform_histograms(seeded: tuple[World, float, int]) -> None:
    world, t0, _ = seeded
    expected = counts(Happy=3, Sad=1, Neutral=2)
    assert get(world, f"/api/courses/{world.course_id}/histogram")["counts"] == expected
    assert get(world, f"/api/teachers/{world.teacher_a_id}/histogram")["counts"] == expected
    assert get(world, f"/api/teachers/{world.teacher_b_id}/histogram", world.teacher_b)["total"] == 0
    assert get(world, "/api/platform/histogram", world.admin)["counts"] == expected
    assert get(world, "/api/platform/histogram", world.admin, since=t0 + 100)["total"] == 1
    assert world.client.get("/api/teachers/999/histogram", headers=world.admin).status_code == 404


def test_platform_overview(seeded: tuple[World, float, int]) -> None:
    world, t0, _ = seeded
    overview = get(world, "/api/platform/overview", world.admin)
    [course] = overview["courses"]
    assert course["course_id"] == world.course_id and course["title"] == "Biology"
    assert course["teacher"] == "Teacher A" and course["total"] == 6
    [teacher] = overview["teachers"]
    assert teacher["teacher_id"] == world.teacher_a_id and teacher["name"] == "Teacher A"
    hours = overview["hours"]
    assert [h["hour"] for h in hours] == list(range(24))
    by_hour: dict[int, int] = {}
    for ts in (t0, t0 + 1, t0 + 2, t0 + 70, t0 + 5, t0 + 130):
        by_hour[int(ts // 3600) % 24] = by_hour.get(int(ts // 3600) % 24, 0) + 1
    assert {h["hour"]: h["total"] for h in hours if h["total"]} == by_hour
    shifted = get(world, "/api/platform/overview", world.admin, utc_offset_s=3600)["hours"]
    assert {(h["hour"] - 1) % 24: h["total"] for h in shifted if h["total"]} == by_hour
