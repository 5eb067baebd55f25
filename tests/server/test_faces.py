"""Faces in view on both databases: no-face samples over HTTP, the stream and server frames; presence buckets."""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi.testclient import TestClient

from .conftest import World, arrived_when_seen, probs_of
from .lesson import get, send, started_at


def test_no_face_samples_count_as_present_not_as_faces(world: World, app: Any) -> None:
    t0 = (time.time() - 300) // 60 * 60
    started_at(app, world.session_id, t0)
    bob, _ = world.join("Bob")
    # Minute 0: Ann's face in view, Bob present without a face. Minute 1: both faces. Minute 2: Ann, no face.
    answer = send(world, world.student, world.session_id, [(t0 + 1, "Happy"), (t0 + 61, "Happy")],
                  no_face=[t0 + 121, t0 + 122])
    assert answer["no_face"] == 2 and answer["duplicates"] == 0
    send(world, bob, world.session_id, [(t0 + 62, "Sad")], no_face=[t0 + 2, t0 + 3])
    presence = get(world, f"/api/sessions/{world.session_id}/presence", bucket_s=60, since=t0, until=t0 + 240)
    rows = [(b["start"], b["present"], b["faces_in_view"]) for b in presence["buckets"]]
    assert rows == [(t0, 2, 1), (t0 + 60, 2, 2), (t0 + 120, 1, 0), (t0 + 180, 0, 0)]
    # No-face samples are not observations: the histogram is untouched.
    assert get(world, f"/api/sessions/{world.session_id}/histogram")["total"] == 3
    # The same ids again: stored once, answered as duplicates.
    body = {"observations": [], "no_face": [{"id": str(uuid.uuid4()), "ts": t0 + 200}] * 2}
    first = world.client.post(f"/api/sessions/{world.session_id}/observations", json=body, headers=bob).json()
    again = world.client.post(f"/api/sessions/{world.session_id}/observations", json=body, headers=bob).json()
    assert (first["no_face"], again["no_face"], again["duplicates"]) == (1, 0, 1)
    # Per topic in the report: students present and with a face.
    world.client.post(f"/api/sessions/{world.session_id}/topics", json={"title": "Intro", "start": t0},
                      headers=world.teacher_a)
    world.client.post(f"/api/sessions/{world.session_id}/topics", json={"title": "Quiz", "start": t0 + 120},
                      headers=world.teacher_a)
    summary = get(world, f"/api/sessions/{world.session_id}/topics/summary")["topics"]
    assert [(t["present"], t["faces_in_view"]) for t in summary] == [(2, 2), (2, 0)]


def test_a_bad_time_refuses_the_whole_batch(world: World) -> None:
    url = f"/api/sessions/{world.session_id}/observations"
    good = {"id": str(uuid.uuid4()), "ts": time.time(), "probs": probs_of("Happy")}
    for body in ({"observations": [good], "no_face": [{"id": str(uuid.uuid4()), "ts": 5.0}]},
                 {"observations": [{**good, "ts": 5.0}], "no_face": [{"id": str(uuid.uuid4()), "ts": time.time()}]},
                 {"observations": [good], "no_face": [{"id": "not a uuid", "ts": time.time()}]}):
        response = world.client.post(url, json=body, headers=world.student)
        assert response.status_code == 422, response.text
    assert get(world, f"/api/sessions/{world.session_id}/histogram")["total"] == 0
    presence = get(world, f"/api/sessions/{world.session_id}/presence", bucket_s=60)
    assert all(b["present"] == 0 for b in presence["buckets"])


def test_stream_acknowledges_no_face_ids(world: World, client: TestClient) -> None:
    token = world.student["Authorization"].split()[1]
    face, no_face = str(uuid.uuid4()), str(uuid.uuid4())
    message = {"type": "scores", "batch": "b1", "observations": [{"id": face, "ts": time.time(),
                                                                  "probs": probs_of("Happy")}],
               "no_face": [{"id": no_face, "ts": time.time()}]}
    with client.websocket_connect(f"/api/sessions/{world.session_id}/stream?token={token}") as ws:
        ws.send_json(message)
        ack = ws.receive_json()
        assert ack["type"] == "scores_ack" and sorted(ack["accepted"]) == sorted([face, no_face]), ack
        ws.send_json(message)
        again = ws.receive_json()
        assert again["accepted"] == [] and sorted(again["duplicates"]) == sorted([face, no_face]), again
    bucket = [b for b in get(world, f"/api/sessions/{world.session_id}/presence", bucket_s=3600)["buckets"]
              if b["present"]]
    assert [(b["present"], b["faces_in_view"]) for b in bucket] == [(1, 1)]


def test_a_server_frame_without_a_face_is_a_no_face_sample(world: World, blank_jpeg: bytes) -> None:
    frame_id = str(uuid.uuid4())
    response = world.client.post(f"/api/sessions/{world.session_id}/frames", content=blank_jpeg,
                                 params={"client_id": frame_id}, headers={**world.student,
                                                                          "Content-Type": "image/jpeg"})
    assert response.status_code == 200 and response.json()["faces"] == 0, response.text
    buckets = [b for b in get(world, f"/api/sessions/{world.session_id}/presence", bucket_s=3600)["buckets"]
               if b["present"]]
    assert [(b["present"], b["faces_in_view"]) for b in buckets] == [(1, 0)]


def test_aggregate_only_presence_follows_the_cell_rules(world: World, app: Any) -> None:
    made = world.client.post(f"/api/courses/{world.course_id}/sessions", headers=world.teacher_a,
                             json={"title": "Quiet", "aggregate_only": True}).json()
    sid = made["id"]
    world.client.post(f"/api/sessions/{sid}/start", headers=world.teacher_a)
    m0 = (time.time() - 240) // 60 * 60
    started_at(app, sid, m0 - 60)
    group = [world.join(f"Hidden{k}", code=made["code"])[0] for k in range(3)]
    for k, header in enumerate(group):  # minute 0: three present, two faces; minute 1: one alone
        send(world, header, sid, [(m0 + 5, "Happy")] if k else [], no_face=[m0 + 6] if not k else None)
    send(world, group[0], sid, [(m0 + 65, "Sad")])
    arrived_when_seen(app, sid)
    with app.state.cm.sessions() as db:
        from sqlalchemy import update

        from classmood.server.faces.models import NoFaceSample

        db.execute(update(NoFaceSample).where(NoFaceSample.session_id == sid).values(received_at=NoFaceSample.ts))
        db.commit()
    for bucket_s in (1, 60):
        presence = get(world, f"/api/sessions/{sid}/presence", bucket_s=bucket_s, since=m0 - 60)
        assert presence["bucket_s"] == 60
        shown = {b["start"]: (b["present"], b["faces_in_view"]) for b in presence["buckets"] if not b["suppressed"]}
        assert shown == {m0: (3, 2)}, presence
        now_bucket = presence["buckets"][-1]
        assert now_bucket["suppressed"] and now_bucket["present"] is None
    for since, until in ((m0 + 5.5, m0 + 50), (m0 + 7, m0 + 8), (m0 - 0.5, m0 + 5.2)):  # cutting through the cell
        presence = get(world, f"/api/sessions/{sid}/presence", since=since, until=until)
        shown = {b["start"]: (b["present"], b["faces_in_view"]) for b in presence["buckets"] if not b["suppressed"]}
        assert shown == {m0: (3, 2)}, (since, until, presence)
    summary = get(world, f"/api/sessions/{sid}/topics/summary")
    assert summary["topics"] == []


def test_deleting_own_data_and_retention_take_the_no_face_samples(world: World, app: Any) -> None:
    from classmood.server.observations.service import purge

    bob, _ = world.join("Bob")
    now = time.time()
    send(world, world.student, world.session_id, [(now, "Happy")], no_face=[now - 1])
    send(world, bob, world.session_id, [], no_face=[now - 2])
    assert world.client.delete("/api/me/observations", headers=world.student).status_code == 200
    buckets = get(world, f"/api/sessions/{world.session_id}/presence", bucket_s=3600)["buckets"]
    assert sum(b["present"] for b in buckets) == 1  # Bob's sample alone is left
    with app.state.cm.sessions() as db:
        purge(db, before_ts=now + 10)
    buckets = get(world, f"/api/sessions/{world.session_id}/presence", bucket_s=3600)["buckets"]
    assert sum(b["present"] for b in buckets) == 0
