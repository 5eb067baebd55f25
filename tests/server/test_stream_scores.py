"""Device score batches on the student stream: the rules of ``POST .../observations``, over one WebSocket."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from classmood.server.observations.stream import CloseCode

from .conftest import World, probs_of
from .test_stream import stream_url


def score(ts: float | None = None, **overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"id": str(uuid.uuid4()), "ts": time.time() - 1 if ts is None else ts, "score": 0.9,
                            "probs": probs_of("Happy")}
    item.update(overrides)
    return item


def send_scores(ws: WebSocketTestSession, items: list[dict[str, Any]], batch: str = "b1") -> dict[str, Any]:
    ws.send_text(json.dumps({"type": "scores", "batch": batch, "observations": items}))
    reply: dict[str, Any] = ws.receive_json()
    return reply


def stored(world: World) -> list[str]:
    rows = world.client.get("/api/me/observations", headers=world.student).json()["observations"]
    return sorted(row["client_id"] for row in rows)


def test_batch_is_stored_once_and_a_resent_batch_is_answered_duplicate(world: World) -> None:
    items = [score(), score()]
    ids = sorted(item["id"] for item in items)
    with world.client.websocket_connect(stream_url(world)) as ws:
        reply = send_scores(ws, items, batch="first")
        assert reply == {"type": "scores_ack", "batch": "first", "accepted": reply["accepted"], "duplicates": []}
        assert sorted(reply["accepted"]) == ids
        # Re-sent (an ack lost in a reconnect), with one new score: only the new one is stored.
        fresh = score()
        again = send_scores(ws, [*items, fresh], batch="again")
        assert again["accepted"] == [fresh["id"]] and sorted(again["duplicates"]) == ids
    # A score first sent over HTTP is a duplicate on the stream too: one idempotency rule for both paths.
    over_http = score()
    url = f"/api/sessions/{world.session_id}/observations"
    assert world.client.post(url, json={"observations": [over_http]}, headers=world.student).status_code == 200
    with world.client.websocket_connect(stream_url(world)) as ws:
        assert send_scores(ws, [over_http])["duplicates"] == [over_http["id"]]
    assert stored(world) == sorted([*ids, fresh["id"], over_http["id"]])


@pytest.mark.parametrize("bad", [
    {"probs": {**probs_of("Happy"), "Happy": 0.1}},  # does not sum to 1
    {"probs": {k: v for k, v in probs_of("Happy").items() if k != "Happy"}},  # six emotions
    {"score": 1.5},
    {"id": "not-a-uuid"},
    {"ts": "yesterday"},
])
def test_bad_values_refuse_the_whole_batch_with_422_and_store_nothing(world: World, bad: dict[str, Any]) -> None:
    with world.client.websocket_connect(stream_url(world)) as ws:
        reply = send_scores(ws, [score(), score(**bad)], batch="bad")
        assert reply["type"] == "error" and reply["status"] == 422 and reply["batch"] == "bad"
        assert isinstance(reply["detail"], list) and reply["detail"][0]["loc"][0] == "observations"
        good = score()
        assert send_scores(ws, [good])["accepted"] == [good["id"]]  # the stream keeps going
    assert stored(world) == [good["id"]]


def test_non_finite_numbers_are_refused(world: World) -> None:
    with world.client.websocket_connect(stream_url(world)) as ws:
        text = json.dumps({"type": "scores", "observations": [score()]}).replace('"score": 0.9', '"score": NaN')
        ws.send_text(text)
        reply = ws.receive_json()
        assert reply["type"] == "error" and reply["status"] == 422 and reply["batch"] is None
    assert stored(world) == []


@pytest.mark.parametrize("ts", [1.0, time.time() + 3600], ids=["in-1970", "an-hour-ahead"])
def test_time_outside_the_live_window_is_refused(world: World, ts: float) -> None:
    with world.client.websocket_connect(stream_url(world)) as ws:
        reply = send_scores(ws, [score(), score(ts=ts)])
        assert reply["type"] == "error" and reply["status"] == 422 and "live window" in json.dumps(reply["detail"])
    assert stored(world) == []


def test_too_many_observations_are_refused(world: World, app: Any) -> None:
    limit = app.state.cm.settings.batch_max
    with world.client.websocket_connect(stream_url(world)) as ws:
        reply = send_scores(ws, [score() for _ in range(limit + 1)])
        assert reply["type"] == "error" and reply["status"] == 413
    assert stored(world) == []


def test_after_the_session_ends_a_batch_gets_409_and_the_stream_closes(world: World) -> None:
    with world.client.websocket_connect(stream_url(world)) as ws:
        first = score()
        assert send_scores(ws, [first])["accepted"] == [first["id"]]
        assert world.client.post(f"/api/sessions/{world.session_id}/end", headers=world.teacher_a).status_code == 200
        reply = send_scores(ws, [score()], batch="late")
        assert reply["type"] == "error" and reply["status"] == 409 and reply["batch"] == "late"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == CloseCode.SESSION_OVER
    assert stored(world) == [first["id"]]


def test_on_device_session_takes_scores_and_refuses_frames(world: World, astronaut_jpeg: bytes) -> None:
    from .test_stream import message

    url = f"/api/sessions/{world.session_id}"
    patched = world.client.patch(url, json={"analysis_mode": "device", "allow_server_fallback": False},
                                 headers=world.teacher_a)
    assert patched.status_code == 200, patched.text
    with world.client.websocket_connect(stream_url(world)) as ws:
        item = score()
        assert send_scores(ws, [item])["accepted"] == [item["id"]]
        ws.send_text(message(astronaut_jpeg))
        refused = ws.receive_json()
        assert refused["type"] == "error" and refused["status"] == 409 and "devices" in refused["detail"]
    assert stored(world) == [item["id"]]
