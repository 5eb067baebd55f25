"""Per-student views on both databases: a student's timeline, students to check on, the summary CSV."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

from classmood.labels import LABELS

from .conftest import World
from .lesson import CALM, UNHAPPY, ended_at, get, send, spread, started_at


def test_student_timeline_is_theirs_alone(world: World, app: Any) -> None:
    t0 = (time.time() - 600) // 60 * 60
    started_at(app, world.session_id, t0)
    bob, bob_id = world.join("Bob")
    send(world, world.student, world.session_id, spread(t0, 60, ("Happy",)) + spread(t0 + 60, 30, ("Sad",)))
    send(world, bob, world.session_id, spread(t0, 120, ("Neutral",)))
    base = f"/api/sessions/{world.session_id}/participants"
    ann = get(world, f"{base}/{world.participant_id}/timeline", bucket_s=60, since=t0, until=t0 + 180)
    assert ann["bucket_s"] == 60 and [b["start"] for b in ann["buckets"]] == [t0, t0 + 60, t0 + 120]
    assert [b["total"] for b in ann["buckets"]] == [60, 30, 0]
    assert [b["participants"] for b in ann["buckets"]] == [1, 1, 0]
    whole = get(world, f"/api/sessions/{world.session_id}/timeline", bucket_s=60, since=t0, until=t0 + 180)
    assert [(b["total"], b["participants"]) for b in whole["buckets"]] == [(120, 2), (90, 2), (0, 0)]
    assert ann["buckets"][0]["counts"] == {**dict.fromkeys(LABELS, 0), "Happy": 60}
    assert ann["buckets"][1]["counts"]["Sad"] == 30 and ann["buckets"][1]["counts"]["Neutral"] == 0
    same = get(world, f"/api/sessions/{world.session_id}/timeline", bucket_s=60, since=t0, until=t0 + 180,
               participant_id=world.participant_id)
    assert same == ann
    own = get(world, "/api/me/timeline", header=world.student, bucket_s=60)
    assert [b for b in own["buckets"] if b["total"]] == ann["buckets"][:2]
    assert sum(b["total"] for b in get(world, "/api/me/timeline", header=bob)["buckets"]) == 120
    assert world.client.get(f"{base}/{bob_id}/timeline", headers=world.teacher_b).status_code == 403
    assert world.client.get(f"{base}/{2**31 - 1}/timeline", headers=world.teacher_a).status_code == 404
    other = world.client.post(f"/api/courses/{world.course_id}/sessions", json={"title": "Other"},
                              headers=world.teacher_a).json()
    wrong = world.client.get(f"/api/sessions/{other['id']}/participants/{bob_id}/timeline", headers=world.teacher_a)
    assert wrong.status_code == 404
    assert world.client.get("/api/me/timeline", headers=world.teacher_a).status_code in (401, 403)


def test_students_to_check_on(world: World, app: Any) -> None:
    now = time.time()
    t0 = now - 900
    started_at(app, world.session_id, t0)
    bob, _ = world.join("Bob")
    cy, cy_id = world.join("Cy")
    _dee, dee_id = world.join("Dee")
    # Ann: calm for ten minutes, unhappy in the last three. Bob: always a little sad, the same now.
    send(world, world.student, world.session_id, spread(t0, 600, CALM) + spread(now - 180, 180, UNHAPPY))
    send(world, bob, world.session_id, spread(t0, 400, ("Sad", "Neutral", "Neutral"))
         + spread(now - 200, 200, ("Sad", "Neutral", "Neutral")))
    send(world, cy, world.session_id, spread(now - 100, 10, UNHAPPY))  # only recent data: never flagged
    answer = get(world, f"/api/sessions/{world.session_id}/check-on")
    assert [s["display_name"] for s in answer["students"]] == ["Ann"]
    ann = answer["students"][0]
    assert ann["recent"]["negative_share"] == 1 and ann["earlier"]["negative_share"] == 0
    assert ann["recent"]["observations"] == 180 and ann["earlier"]["observations"] == 600
    assert ann["increase"] == 1
    assert {s["participant_id"] for s in answer["not_enough_data"]} == {cy_id}  # Dee sent nothing at all
    assert dee_id not in {s["participant_id"] for s in answer["students"]}
    rule = answer["rule"]
    assert rule["recent_s"] == 300 and rule["min_observations"] == 20 and "25%" in rule["text"]
    # A narrower recent window: Ann's last minute only is still far above her earlier level.
    narrow = get(world, f"/api/sessions/{world.session_id}/check-on", recent_s=60)
    assert narrow["rule"]["recent_s"] == 60 and [s["display_name"] for s in narrow["students"]] == ["Ann"]
    assert world.client.get(f"/api/sessions/{world.session_id}/check-on", headers=world.teacher_b).status_code == 403
    # After class the recent period ends with the session: the answer stays the same later on.
    ended_at(app, world.session_id, now + 1)
    assert [s["display_name"] for s in get(world, f"/api/sessions/{world.session_id}/check-on")["students"]] == ["Ann"]


def test_student_summary_csv(world: World, app: Any) -> None:
    t0 = (time.time() - 300) // 60 * 60
    started_at(app, world.session_id, t0)
    world.join("Bob")
    send(world, world.student, world.session_id, [(t0, "Happy"), (t0 + 1, "Happy"), (t0 + 2, "Sad"), (t0 + 3, "Fear")])
    response = world.client.get(f"/api/sessions/{world.session_id}/participants.csv", headers=world.teacher_a)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["display_name"] for r in rows] == ["Ann", "Bob"]
    ann, bob = rows
    assert ann["observations"] == "4" and ann["negative_share"] == "0.5000" and ann["top_label"] == "Happy"
    assert ann["share_happy"] == "0.5000" and ann["first_time"].startswith(time.strftime("%Y-%m-%dT", time.gmtime(t0)))
    assert ann["first_time"].endswith("+00:00") and ann["last_time"] > ann["first_time"]
    assert bob["observations"] == "0" and bob["first_time"] == "" and bob["negative_share"] == ""
