"""Frames and device batches: analysis, idempotency and every limit (413, 415, 400, 422, 429, 409)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from classmood.labels import LABELS
from classmood.server.app import create_app

from .conftest import World, build_world, make_settings, probs_of


def frames_url(world: World) -> str:
    return f"/api/sessions/{world.session_id}/frames"


def jpeg_headers(world: World) -> dict[str, str]:
    return {**world.student, "Content-Type": "image/jpeg"}


def stored(world: World) -> int:
    return world.client.get("/api/me/observations", headers=world.student).json()["count"]


def test_frame_is_analysed_and_stored_once(world: World, astronaut_jpeg: bytes, settings: Any) -> None:
    client_id = str(uuid.uuid4())
    ts = time.time() - 5
    response = world.client.post(frames_url(world), content=astronaut_jpeg, headers=jpeg_headers(world),
                                 params={"client_id": client_id, "ts": ts})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["faces"] == 1 and body["duplicate"] is False
    face = body["observations"][0]
    assert face["client_id"] == client_id and face["label"] in LABELS
    assert set(face["probs"]) == set(LABELS) and sum(face["probs"].values()) == pytest.approx(1, abs=1e-4)
    assert face["label"] == max(face["probs"], key=face["probs"].get)
    x, _y, w, h = face["box"]
    assert 100 < x + w / 2 < 540 and w > 50 and h > 50  # the face is in the middle of the frame
    again = world.client.post(frames_url(world), content=astronaut_jpeg, headers=jpeg_headers(world),
                              params={"client_id": client_id, "ts": ts}).json()
    assert again == {"observations": [], "faces": 0, "duplicate": True, "shed": False}
    mine = world.client.get("/api/me/observations", headers=world.student).json()
    assert mine["count"] == 1 and mine["observations"][0]["ts"] == pytest.approx(ts)
    assert mine["observations"][0]["source"] == "frame"
    # Frames are never written to disk: the data folder holds nothing but the database's own files.
    assert not (Path(settings.data_dir) / "frames").exists()


def test_multipart_frame(world: World, astronaut_jpeg: bytes) -> None:
    files = {"frame": ("f.jpg", astronaut_jpeg, "image/jpeg")}
    response = world.client.post(frames_url(world), files=files, headers=world.student)
    assert response.status_code == 200 and response.json()["faces"] == 1
    missing = world.client.post(frames_url(world), files={"other": ("f.jpg", astronaut_jpeg, "image/jpeg")},
                                headers=world.student)
    assert missing.status_code == 400 and "frame" in missing.text


def test_frame_without_face_stores_nothing(world: World, blank_jpeg: bytes) -> None:
    response = world.client.post(frames_url(world), content=blank_jpeg, headers=jpeg_headers(world))
    assert response.status_code == 200 and response.json()["faces"] == 0
    assert stored(world) == 0


def test_png_frames_are_accepted(world: World, astronaut_jpeg: bytes) -> None:
    image = cv2.imdecode(np.frombuffer(astronaut_jpeg, np.uint8), cv2.IMREAD_COLOR)
    png = cv2.imencode(".png", image)[1].tobytes()
    response = world.client.post(frames_url(world), content=png, headers={**world.student,
                                                                           "Content-Type": "image/png"})
    assert response.status_code == 200 and response.json()["faces"] == 1


def test_frame_limits(world: World, astronaut_jpeg: bytes, settings: Any) -> None:
    post = world.client.post
    url = frames_url(world)
    too_big = astronaut_jpeg + b"\0" * settings.max_frame_bytes
    assert post(url, content=too_big, headers=jpeg_headers(world)).status_code == 413
    # A few kilobytes of PNG that would decode into 4000x4000 pixels: refused from the header alone.
    huge = cv2.imencode(".png", np.zeros((4000, 4000), np.uint8))[1].tobytes()
    assert len(huge) < settings.max_frame_bytes
    response = post(url, content=huge, headers={**world.student, "Content-Type": "image/png"})
    assert response.status_code == 413 and "pixels" in response.text
    assert post(url, content=b"GIF89a....", headers=jpeg_headers(world)).status_code == 415
    assert post(url, content=astronaut_jpeg, headers={**world.student, "Content-Type": "text/plain"}).status_code == 415
    broken = astronaut_jpeg[:3] + b"\x00" * 200
    assert post(url, content=broken, headers=jpeg_headers(world)).status_code == 400
    truncated = astronaut_jpeg[: len(astronaut_jpeg) // 8]
    assert post(url, content=truncated, headers=jpeg_headers(world)).status_code in (200, 400)
    assert post(url, content=b"", headers=jpeg_headers(world)).status_code == 400
    bad_id = post(url, content=astronaut_jpeg, headers=jpeg_headers(world), params={"client_id": "nope"})
    assert bad_id.status_code == 422
    assert stored(world) <= 1  # at most the truncated frame, if OpenCV could still read a face from it


def test_frames_need_a_participant_token_of_this_session(world: World, astronaut_jpeg: bytes) -> None:
    post = world.client.post
    assert post(frames_url(world), content=astronaut_jpeg, headers={"Content-Type": "image/jpeg"}).status_code == 401
    teacher = {**world.teacher_a, "Content-Type": "image/jpeg"}
    assert post(frames_url(world), content=astronaut_jpeg, headers=teacher).status_code == 403
    other = world.client.post(f"/api/courses/{world.course_id}/sessions", json={"title": "Other"},
                              headers=world.teacher_a).json()
    wrong = post(f"/api/sessions/{other['id']}/frames", content=astronaut_jpeg, headers=jpeg_headers(world))
    assert wrong.status_code == 403


def test_frames_to_ended_or_unstarted_session_are_409(world: World, astronaut_jpeg: bytes) -> None:
    later = world.client.post(f"/api/courses/{world.course_id}/sessions", json={"title": "Later"},
                              headers=world.teacher_a).json()
    student, _ = world.join("Early", code=later["code"])
    early = world.client.post(f"/api/sessions/{later['id']}/frames", content=astronaut_jpeg,
                              headers={**student, "Content-Type": "image/jpeg"})
    assert early.status_code == 409 and "not started" in early.text
    world.client.post(f"/api/sessions/{world.session_id}/end", headers=world.teacher_a)
    response = world.client.post(frames_url(world), content=astronaut_jpeg, headers=jpeg_headers(world))
    assert response.status_code == 409
    batch = {"observations": [{"id": str(uuid.uuid4()), "ts": time.time(), "probs": probs_of("Happy")}]}
    ended = world.client.post(f"/api/sessions/{world.session_id}/observations", json=batch, headers=world.student)
    assert ended.status_code == 409


def test_frame_rate_limit_per_participant(database_url: str, tmp_path: Path, blank_jpeg: bytes) -> None:
    app = create_app(make_settings(database_url, tmp_path / "data", max_fps=0.5))
    with TestClient(app) as client:
        world = build_world(client, app)
        codes = [client.post(frames_url(world), content=blank_jpeg, headers=jpeg_headers(world)).status_code
                 for _ in range(4)]
        assert codes[0] == 200 and codes[-1] == 429
        other, _ = world.join("Bob")  # the limit is per participant
        response = client.post(frames_url(world), content=blank_jpeg, headers={**other, "Content-Type": "image/jpeg"})
        assert response.status_code == 200
    app.state.cm.engine.dispose()


def batch_of(n: int, label: str = "Happy", ts: float | None = None) -> list[dict[str, Any]]:
    start = ts or time.time() - 100
    return [{"id": str(uuid.uuid4()), "ts": start + i, "probs": probs_of(label), "score": 0.9} for i in range(n)]


def test_retried_batch_stores_nothing_twice(world: World) -> None:
    url = f"/api/sessions/{world.session_id}/observations"
    items = batch_of(10)
    first = world.client.post(url, json={"observations": items}, headers=world.student).json()
    assert first == {"accepted": 10, "duplicates": 0, "no_face": 0}
    retry = world.client.post(url, json={"observations": items[5:] + batch_of(3)}, headers=world.student).json()
    assert retry == {"accepted": 3, "duplicates": 5, "no_face": 0}
    doubled = world.client.post(url, json={"observations": [items[0], items[0]]}, headers=world.student).json()
    assert doubled == {"accepted": 0, "duplicates": 2, "no_face": 0}
    assert stored(world) == 13
    # Client ids are unique per participant: another student may reuse an id.
    other, _ = world.join("Bob")
    assert world.client.post(url, json={"observations": items[:2]}, headers=other).json()["accepted"] == 2


def test_batch_validation(world: World, settings: Any) -> None:
    url = f"/api/sessions/{world.session_id}/observations"
    post = world.client.post
    too_many = batch_of(settings.batch_max + 1)
    assert post(url, json={"observations": too_many}, headers=world.student).status_code == 413
    bad = batch_of(1)[0]
    cases = [
        {**bad, "probs": {**probs_of("Happy"), "Happy": 0.99}},       # does not sum to 1
        {**bad, "probs": {k: v for k, v in probs_of("Sad").items() if k != "Sad"}},  # six emotions
        {**bad, "probs": {**probs_of("Happy"), "Joy": 0.0}},           # unknown emotion
        {**bad, "probs": {**probs_of("Happy"), "Angry": -0.1}},        # negative
        {**bad, "id": "not-a-uuid"},
        {**bad, "ts": -5},
        {**bad, "ts": time.time() + 86_400},                           # a day in the future
    ]
    for case in cases:
        assert post(url, json={"observations": [case]}, headers=world.student).status_code == 422, case
    assert post(url, content=b"{not json", headers={**world.student, "Content-Type": "application/json"}
                ).status_code == 422
    assert stored(world) == 0


def test_participant_lists_and_deletes_own_data(world: World) -> None:
    url = f"/api/sessions/{world.session_id}/observations"
    world.client.post(url, json={"observations": batch_of(4, "Sad")}, headers=world.student)
    other, _ = world.join("Bob")
    world.client.post(url, json={"observations": batch_of(2)}, headers=other)
    mine = world.client.get("/api/me/observations", headers=world.student).json()
    assert mine["count"] == 4 and {o["label"] for o in mine["observations"]} == {"Sad"}
    assert world.client.get("/api/me/observations", headers=world.teacher_a).status_code == 403
    assert world.client.delete("/api/me/observations", headers=world.student).json() == {"deleted": 4}
    assert stored(world) == 0
    total = world.client.get(f"/api/sessions/{world.session_id}/histogram", headers=world.teacher_a).json()["total"]
    assert total == 2


def test_store_frames_setting_keeps_frames(database_url: str, tmp_path: Path, astronaut_jpeg: bytes) -> None:
    app = create_app(make_settings(database_url, tmp_path / "data", store_frames=True))
    with TestClient(app) as client:
        world = build_world(client, app)
        client_id = str(uuid.uuid4())
        client.post(frames_url(world), content=astronaut_jpeg, headers=jpeg_headers(world),
                    params={"client_id": client_id})
    kept = list((tmp_path / "data" / "frames").rglob("*.jpg"))
    assert [p.name for p in kept] == [f"{client_id}.jpg"] and kept[0].read_bytes() == astronaut_jpeg
    app.state.cm.engine.dispose()
