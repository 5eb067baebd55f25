"""The WebSocket frame stream: acks, duplicates after a reconnect, errors, authentication."""

from __future__ import annotations

import base64
import json
import time
import uuid

import pytest
from starlette.websockets import WebSocketDisconnect

from classmood.labels import LABELS

from .conftest import World


def stream_url(world: World, token_header: dict[str, str] | None = None) -> str:
    token = (token_header or world.student)["Authorization"].split()[1]
    return f"/api/sessions/{world.session_id}/stream?token={token}"


def message(image: bytes, frame_id: str | None = None) -> str:
    return json.dumps({"id": frame_id or str(uuid.uuid4()), "ts": time.time(),
                       "image": base64.b64encode(image).decode()})


def test_stream_acks_frames_and_dedups_resent_ids(world: World, astronaut_jpeg: bytes, blank_jpeg: bytes) -> None:
    frame_id = str(uuid.uuid4())
    with world.client.websocket_connect(stream_url(world)) as ws:
        ws.send_text(message(astronaut_jpeg, frame_id))
        ack = ws.receive_json()
        assert ack["type"] == "ack" and ack["id"] == frame_id and ack["faces"] == 1 and ack["duplicate"] is False
        assert ack["label"] in LABELS and set(ack["probs"]) == set(LABELS)
        ws.send_text(message(blank_jpeg))
        assert ws.receive_json()["faces"] == 0
    # After a reconnect the page re-sends unacknowledged frames: stored once, acknowledged as duplicates.
    with world.client.websocket_connect(stream_url(world)) as ws:
        ws.send_text(message(astronaut_jpeg, frame_id))
        again = ws.receive_json()
        assert again == {"type": "ack", "id": frame_id, "faces": 0, "duplicate": True}
    assert world.client.get("/api/me/observations", headers=world.student).json()["count"] == 1


def test_stream_hides_own_emotion_when_session_says_so(world: World, astronaut_jpeg: bytes) -> None:
    world.client.patch(f"/api/sessions/{world.session_id}", json={"show_self_to_students": False},
                       headers=world.teacher_a)
    with world.client.websocket_connect(stream_url(world)) as ws:
        ws.send_text(message(astronaut_jpeg))
        ack = ws.receive_json()
    assert ack["faces"] == 1 and "label" not in ack and "probs" not in ack


def test_stream_reports_bad_messages_and_keeps_going(world: World, astronaut_jpeg: bytes) -> None:
    with world.client.websocket_connect(stream_url(world)) as ws:
        ws.send_text("not json")
        assert ws.receive_json()["type"] == "error"
        ws.send_text(json.dumps({"id": "x", "image": "AAAA"}))
        error = ws.receive_json()
        assert error["type"] == "error" and error["id"] == "x" and "uuid" in error["detail"]
        frame_id = str(uuid.uuid4())
        ws.send_text(json.dumps({"id": frame_id, "ts": time.time(), "image": "%%%not base64"}))
        assert ws.receive_json() == {"type": "error", "id": frame_id, "detail": "image is not valid base64",
                                     "status": 400}
        ws.send_text(json.dumps({"id": frame_id, "ts": time.time(), "image": base64.b64encode(b"GIF89a").decode()}))
        assert ws.receive_json()["status"] == 415
        ws.send_bytes(b"\x00\x01")
        assert ws.receive_json()["type"] == "error"
        # Nesting deeper than the JSON parser recurses (a 20 kB message) is an error like any bad JSON.
        for deep in ("[" * 10_000 + "]" * 10_000, '{"type": "scores", "observations": ' + "[" * 10_000):
            ws.send_text(deep)
            assert ws.receive_json() == {"type": "error", "id": "", "detail": "messages must be JSON objects",
                                         "status": 400}
        ws.send_text(message(astronaut_jpeg))
        assert ws.receive_json()["type"] == "ack"


@pytest.mark.parametrize("who", ["nobody", "teacher", "forged"])
def test_stream_refuses_non_participants(world: World, who: str) -> None:
    token = {"nobody": "", "teacher": world.teacher_a["Authorization"].split()[1], "forged": "abc.def"}[who]
    with world.client.websocket_connect(f"/api/sessions/{world.session_id}/stream?token={token}") as ws:
        error = ws.receive_json()
        assert error["type"] == "error" and error["status"] in (401, 403)
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code in (4401, 4403)


def test_stream_closes_when_the_session_ends(world: World, astronaut_jpeg: bytes) -> None:
    with world.client.websocket_connect(stream_url(world)) as ws:
        world.client.post(f"/api/sessions/{world.session_id}/end", headers=world.teacher_a)
        ws.send_text(message(astronaut_jpeg))
        error = ws.receive_json()
        assert error["type"] == "error" and error["status"] == 409
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 4409
