"""Lesson topics on both databases: created live and afterwards, each with exactly its own range's figures."""

from __future__ import annotations

import csv
import io
import time
from datetime import datetime
from typing import Any

import pytest

from classmood.labels import LABELS

from .conftest import World
from .lesson import CALM, UNHAPPY, ended_at, get, send, spread, started_at


@pytest.fixture
def lesson(world: World, app: Any) -> tuple[World, float]:
    """Three students: a calm first two minutes, an unhappy next two (one reading a second each)."""
    t0 = (time.time() - 600) // 60 * 60
    started_at(app, world.session_id, t0)
    students = [world.student, world.join("Bob")[0], world.join("Cy")[0]]
    for k, header in enumerate(students):
        send(world, header, world.session_id, spread(t0, 120, CALM, offset=k / 10))
        send(world, header, world.session_id, spread(t0 + 120, 120, UNHAPPY, offset=k / 10))
    return world, t0


def topics_url(world: World) -> str:
    return f"/api/sessions/{world.session_id}/topics"


def test_topics_marked_afterwards_get_their_own_range(lesson: tuple[World, float]) -> None:
    world, t0 = lesson
    url = topics_url(world)
    quiz = world.client.post(url, json={"title": "Quiz", "start": t0 + 120}, headers=world.teacher_a)
    intro = world.client.post(url, json={"title": "Intro", "start": t0}, headers=world.teacher_a)
    assert quiz.status_code == 201 and intro.status_code == 201, quiz.text
    assert intro.json() == {"id": intro.json()["id"], "title": "Intro", "start": t0, "end": t0 + 120}
    assert quiz.json()["end"] is None  # the session is live: the last topic still runs
    topics = get(world, url)
    assert [t["title"] for t in topics] == ["Intro", "Quiz"]
    hist = f"/api/sessions/{world.session_id}/histogram"
    assert topics[0]["histogram"] == get(world, hist, since=t0, until=t0 + 120)
    assert topics[1]["histogram"] == get(world, hist, since=t0 + 120)
    assert topics[0]["histogram"]["total"] == 360 and topics[1]["histogram"]["total"] == 360
    calm, unhappy = topics[0]["histogram"]["counts"], topics[1]["histogram"]["counts"]
    assert calm["Happy"] == 180 and calm["Neutral"] == 180 and sum(calm[label] for label in UNHAPPY) == 0
    assert unhappy["Sad"] == unhappy["Angry"] == unhappy["Fear"] == 120 and unhappy["Happy"] == 0
    summary = get(world, f"{url}/summary")
    first, second = summary["topics"]
    assert first["negative_share"] == 0 and second["negative_share"] == 1
    assert first["students"] == 3 and first["observations"] == 360 and first["duration_s"] == 120
    assert second["sentence"] == "Quiz: negative share 100 % against 0 % for the rest"
    assert first["sentence"] == "Intro: negative share 0 % against 100 % for the rest"
    assert summary["rule"]["min_observations"] == 30 and "z-test" in summary["rule"]["text"]


def test_topics_marked_live_split_at_their_starts(world: World, app: Any) -> None:
    url = topics_url(world)
    started_at(app, world.session_id, time.time() - 60)
    first = world.client.post(url, json={"title": "Slides 1-11"}, headers=world.teacher_a).json()
    assert abs(first["start"] - time.time()) < 5 and first["end"] is None
    send(world, world.student, world.session_id, [(first["start"] + 0.001, "Happy")])
    second = world.client.post(url, json={"title": "Slide 12"}, headers=world.teacher_a).json()
    send(world, world.student, world.session_id, [(second["start"] + 0.001, "Sad")])
    topics = get(world, url)
    assert topics[0]["end"] == second["start"] and topics[1]["end"] is None
    assert topics[0]["histogram"]["counts"]["Happy"] == 1 and topics[0]["histogram"]["total"] == 1
    assert topics[1]["histogram"]["counts"]["Sad"] == 1 and topics[1]["histogram"]["total"] == 1
    # Renamed and moved after class; the session's end closes the last topic.
    change = {"title": "Slide twelve", "start": first["start"] + 0.0005}
    moved = world.client.patch(f"{url}/{second['id']}", json=change, headers=world.teacher_a)
    assert moved.status_code == 200 and moved.json()["title"] == "Slide twelve", moved.text
    topics = get(world, url)
    assert topics[0]["histogram"]["total"] == 0 and topics[1]["histogram"]["total"] == 2
    end = time.time()
    ended_at(app, world.session_id, end)
    assert get(world, url)[1]["end"] == pytest.approx(end)
    assert world.client.delete(f"{url}/{second['id']}", headers=world.teacher_a).status_code == 204
    topics = get(world, url)
    assert len(topics) == 1 and topics[0]["end"] == pytest.approx(end) and topics[0]["histogram"]["total"] == 2


def test_topic_checks(world: World, app: Any) -> None:
    url = topics_url(world)
    t0 = time.time() - 100
    started_at(app, world.session_id, t0)
    assert get(world, url) == [] and get(world, f"{url}/summary")["topics"] == []
    assert world.client.post(url, json={"title": "Early", "start": t0 - 10}, headers=world.teacher_a).status_code == 422
    future = world.client.post(url, json={"title": "Later", "start": time.time() + 100}, headers=world.teacher_a)
    assert future.status_code == 422
    assert world.client.post(url, json={"title": " ", "start": t0}, headers=world.teacher_a).status_code == 422
    assert world.client.post(url, json={"title": "X", "start": t0}, headers=world.teacher_b).status_code == 403
    assert world.client.get(url, headers=world.teacher_b).status_code == 403
    assert world.client.post(url, json={"title": "X"}, headers=world.student).status_code in (401, 403)
    made = world.client.post(url, json={"title": "X", "start": t0 + 1}, headers=world.admin)
    assert made.status_code == 201
    again = world.client.post(url, json={"title": "Y", "start": t0 + 1}, headers=world.teacher_a)
    assert again.status_code == 409
    assert world.client.patch(f"{url}/{2**31 - 1}", json={"title": "Z"}, headers=world.teacher_a).status_code == 404
    assert world.client.delete(f"{url}/{2**31 - 1}", headers=world.teacher_a).status_code == 404
    other = world.client.post(f"/api/courses/{world.course_id}/sessions", json={"title": "Not started"},
                              headers=world.teacher_a).json()
    assert world.client.post(f"/api/sessions/{other['id']}/topics", json={"title": "X"},
                             headers=world.teacher_a).status_code == 409
    assert world.client.patch(f"/api/sessions/{other['id']}/topics/{made.json()['id']}", json={"title": "Z"},
                              headers=world.teacher_a).status_code == 404  # a topic of another session
    assert set(get(world, url)[0]["histogram"]["counts"]) == set(LABELS)


def test_csv_export_has_time_and_topic_columns(lesson: tuple[World, float]) -> None:
    world, t0 = lesson
    url = topics_url(world)
    world.client.post(url, json={"title": "Intro", "start": t0 + 60}, headers=world.teacher_a)
    world.client.post(url, json={"title": "Quiz", "start": t0 + 120}, headers=world.teacher_a)
    response = world.client.get(f"/api/sessions/{world.session_id}/export.csv", headers=world.teacher_a)
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert list(rows[0])[:11] == ["observation_id", "session_id", "participant_id", "display_name", "client_id", "ts",
                                  "time", "topic", "source", "label", "score"]
    assert len(rows) == 720
    for row in rows:
        ts = float(row["ts"])
        assert datetime.fromisoformat(row["time"]).timestamp() == pytest.approx(ts, abs=1e-3)
        assert row["time"].endswith("+00:00")
        assert row["topic"] == ("" if ts < t0 + 60 else "Intro" if ts < t0 + 120 else "Quiz"), row
    assert {row["topic"] for row in rows} == {"", "Intro", "Quiz"}
