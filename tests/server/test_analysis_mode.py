"""Per-session analysis mode: on the student's device (the default) or on the server, set by the teacher."""

from __future__ import annotations

import base64
import time
import uuid
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from classmood.config import Settings
from classmood.server.app import create_app

from .conftest import World, build_world, make_settings, probs_of


def _device_world(database_url: str, tmp_path: Path, **overrides: Any) -> tuple[TestClient, World]:
    settings = make_settings(database_url, tmp_path / "data", analysis_mode="device", **overrides)
    client = TestClient(create_app(settings))
    return client, build_world(client, client.app)


def test_device_is_the_default_of_new_sessions() -> None:
    assert Settings().analysis_mode == "device" and Settings().allow_server_fallback is False


def test_device_mode_refuses_frames_with_409_and_takes_scores(database_url: str, tmp_path: Path,
                                                              astronaut_jpeg: bytes) -> None:
    client, world = _device_world(database_url, tmp_path)
    with client:
        session = client.get(f"/api/sessions/{world.session_id}", headers=world.teacher_a).json()
        assert session["analysis_mode"] == "device" and session["allow_server_fallback"] is False
        info = client.get(f"/api/join/{world.code}").json()
        assert info["analysis_mode"] == "device" and info["allow_server_fallback"] is False
        r = client.post(f"/api/sessions/{world.session_id}/frames", content=astronaut_jpeg,
                        headers={**world.student, "Content-Type": "image/jpeg"})
        assert r.status_code == 409, r.text
        assert "devices" in r.json()["detail"] and "/observations" in r.json()["detail"]
        token = world.student["Authorization"].split()[1]
        with client.websocket_connect(f"/api/sessions/{world.session_id}/stream?token={token}") as ws:
            ws.send_json({"id": str(uuid.uuid4()), "ts": time.time(),
                          "image": base64.b64encode(astronaut_jpeg).decode()})
            reply = ws.receive_json()
        assert reply["type"] == "error" and reply["status"] == 409
        assert client.get("/api/me/observations", headers=world.student).json()["count"] == 0  # nothing analysed
        batch = {"observations": [{"id": str(uuid.uuid4()), "ts": time.time(), "probs": probs_of("Happy")}]}
        r = client.post(f"/api/sessions/{world.session_id}/observations", json=batch, headers=world.student)
        assert r.status_code == 200 and r.json() == {"accepted": 1, "duplicates": 0, "no_face": 0}


def test_teacher_switches_mode_and_fallback(database_url: str, tmp_path: Path, astronaut_jpeg: bytes) -> None:
    client, world = _device_world(database_url, tmp_path)
    url, frames = f"/api/sessions/{world.session_id}", f"/api/sessions/{world.session_id}/frames"
    jpeg = {**world.student, "Content-Type": "image/jpeg"}
    with client:
        assert client.post(frames, content=astronaut_jpeg, headers=jpeg).status_code == 409
        r = client.patch(url, json={"allow_server_fallback": True}, headers=world.teacher_a)
        assert r.status_code == 200 and r.json()["allow_server_fallback"] is True
        assert client.get(f"/api/join/{world.code}").json()["allow_server_fallback"] is True
        assert client.post(frames, content=astronaut_jpeg, headers=jpeg).json()["faces"] == 1  # the fallback
        client.patch(url, json={"allow_server_fallback": False, "analysis_mode": "server"}, headers=world.teacher_a)
        assert client.post(frames, content=astronaut_jpeg, headers=jpeg).json()["faces"] == 1
        assert client.patch(url, json={"analysis_mode": "cloud"}, headers=world.teacher_a).status_code == 422
        assert client.patch(url, json={"analysis_mode": "device"}, headers=world.teacher_b).status_code == 403
        course = client.post("/api/courses", json={"title": "Chem"}, headers=world.teacher_a).json()
        made = client.post(f"/api/courses/{course['id']}/sessions", headers=world.teacher_a,
                           json={"title": "Server lesson", "analysis_mode": "server", "allow_server_fallback": True})
        assert made.status_code == 201
        assert (made.json()["analysis_mode"], made.json()["allow_server_fallback"]) == ("server", True)


def test_ondevice_config_comes_from_the_model(client: TestClient) -> None:
    from classmood.server.ondevice import emotion_contract
    from classmood.vision.contract import ModelContract
    from classmood.vision.pipeline import MIN_FACE, WEBCAM_SIDE
    from classmood.vision.preprocess import EYE_MOUTH_TO_FACE

    config = client.get("/api/ondevice/config").json()
    assert ModelContract.from_dict(config["contract"]) == ModelContract.from_dict(emotion_contract())
    assert config["pipeline"]["eye_mouth_to_face"] == EYE_MOUTH_TO_FACE
    assert (config["pipeline"]["webcam_side"], config["pipeline"]["min_face"]) == (WEBCAM_SIDE, MIN_FACE)
    model = client.get(config["emotion_model_url"])
    assert model.status_code == 200 and model.headers["content-type"] == "application/octet-stream"
    detector = client.get(config["detector_model_url"])
    import onnxruntime as ort

    session = ort.InferenceSession(detector.content)
    assert session.get_inputs()[0].name == config["detector"]["input"]
    assert [o.name for o in session.get_outputs()] == config["detector"]["outputs"]
    assert client.get("/static/vendor/ort/../../../pyproject.toml").status_code == 404
