"""Observation times are accepted only within the session's live window (± a few minutes), on every path."""

from __future__ import annotations

import base64
import json
import time
import uuid

import pytest

from classmood.server.observations.service import TS_SLACK_S

from .conftest import World, probs_of

TEN_YEARS_S = 10 * 365.25 * 86400
BAD_TIMES = {"1970": 1.0, "ten years ago": time.time() - TEN_YEARS_S, "a day ahead": time.time() + 86400,
             "before the start": time.time() - 3 * TS_SLACK_S}


def stored(world: World) -> int:
    response = world.client.get(f"/api/sessions/{world.session_id}/histogram", headers=world.teacher_a)
    return int(response.json()["total"])


@pytest.mark.parametrize("when", list(BAD_TIMES))
def test_batches_outside_the_live_window_are_refused(world: World, when: str) -> None:
    good = {"id": str(uuid.uuid4()), "ts": time.time(), "probs": probs_of("Happy")}
    bad = {"id": str(uuid.uuid4()), "ts": BAD_TIMES[when], "probs": probs_of("Sad")}
    response = world.client.post(f"/api/sessions/{world.session_id}/observations", headers=world.student,
                                 json={"observations": [good, bad]})
    assert response.status_code == 422 and "live window" in response.text
    assert stored(world) == 0  # the whole batch is refused, the good item too: the client fixes its clock
    timeline = world.client.get(f"/api/sessions/{world.session_id}/timeline", headers=world.teacher_a)
    assert timeline.status_code == 200


def test_frames_outside_the_live_window_are_refused(world: World, astronaut_jpeg: bytes) -> None:
    url = f"/api/sessions/{world.session_id}/frames"
    headers = {**world.student, "Content-Type": "image/jpeg"}
    for ts in (1.0, time.time() - TEN_YEARS_S):
        response = world.client.post(url, content=astronaut_jpeg, headers=headers, params={"ts": ts})
        assert response.status_code == 422 and "live window" in response.text
    with world.client.websocket_connect(f"/api/sessions/{world.session_id}/stream?token="
                                        f"{world.student['Authorization'].split()[1]}") as ws:
        frame_id = str(uuid.uuid4())
        ws.send_text(json.dumps({"id": frame_id, "ts": 1, "image": base64.b64encode(astronaut_jpeg).decode()}))
        reply = ws.receive_json()
        assert reply["type"] == "error" and reply["status"] == 422 and reply["id"] == frame_id
    assert stored(world) == 0
    ok = world.client.post(url, content=astronaut_jpeg, headers=headers, params={"ts": time.time() - 10})
    assert ok.status_code == 200 and stored(world) == ok.json()["faces"] >= 1
