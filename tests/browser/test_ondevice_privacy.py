"""In on-device mode only scores leave the browser: every request and WebSocket frame recorded while the page
delivers a dozen scores (on the student stream while it is open, else by HTTP)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import pytest

from classmood.vision.search import SHIPPED

from .conftest import LiveServer, Teacher
from .flows import CAMERA_FPS, api_session, join

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

SCORES = 12  # delivered while everything is recorded
INTERVAL_S = 0.2  # the session's pace: the page's shortest, so the dozen scores take seconds, not twelve
# Signatures of pictures in a request body: JPEG / PNG / WebP bytes, their base64 forms, data URLs.
IMAGE_MARKS = (b"\xff\xd8\xff", b"\x89PNG", b"RIFF", b"/9j/", b"iVBOR", b"UklGR", b"data:image")
SCORE_KEYS = {"id", "ts", "score", "probs"}
NO_FACE_KEYS = {"id", "ts"}  # a tick in which the page saw no face: no numbers at all
BATCH_KEYS = {"observations", "no_face"}


def check_batch(batch: dict[str, Any]) -> int:
    """Assert a device batch holds only scores and no-face samples; return its number of scores."""
    assert set(batch) <= BATCH_KEYS, batch
    for item in batch["observations"]:
        assert set(item) == SCORE_KEYS and len(item["probs"]) == 7  # seven numbers, a time, an id
    assert all(set(item) == NO_FACE_KEYS for item in batch.get("no_face", []))
    return len(batch["observations"])


def test_on_device_analysis_sends_no_picture(live_server: LiveServer, teacher: Teacher, context_factory) -> None:
    session = api_session(live_server, teacher, title="Privacy", analysis_mode="device", frame_interval_s=INTERVAL_S)
    context = context_factory()
    requests: list[dict[str, Any]] = []

    def record(route: Any) -> None:
        request = route.request
        requests.append({"url": request.url, "method": request.method, "body": request.post_data_buffer or b""})
        route.continue_()

    context.route("**/*", record)
    sockets: list[str] = []
    frames: list[tuple[str, str | bytes]] = []  # (socket URL, payload) of every frame the page sent

    def watch(ws: Any) -> None:
        sockets.append(ws.url)
        ws.on("framesent", lambda payload: frames.append((ws.url, payload)))

    page = context.new_page()
    page.on("websocket", watch)
    join(page, f"{live_server.url}/join/{session['code']}", "Priya")
    page.wait_for_function("() => window.cmStudent.acked >= 1", timeout=90_000)  # the model runs and scores arrive
    start = len(requests)
    page.wait_for_function(f"() => window.cmStudent.acked >= {SCORES + 1}", timeout=60_000)  # it really analyses
    delivered = page.evaluate("() => window.cmStudent.acked")
    # the camera runs at the shipped search's rate (10 fps of the fake camera's 15: the preview's frames only)
    assert page.evaluate(CAMERA_FPS) == SHIPPED.camera_fps

    origin = urlsplit(live_server.url).netloc
    foreign = [r["url"] for r in requests if urlsplit(r["url"]).netloc != origin]
    assert not foreign, f"requests to another origin: {foreign}"
    foreign_sockets = [url for url in sockets if urlsplit(url).netloc != origin]
    assert not foreign_sockets, f"WebSockets to another origin: {foreign_sockets}"
    stream = f"/api/sessions/{session['id']}/stream"
    assert all(urlsplit(url).path == stream for url in sockets), sockets
    scores_on_stream = 0
    for url, payload in frames:
        data = payload.encode() if isinstance(payload, str) else payload
        assert not any(mark in data for mark in IMAGE_MARKS), f"a frame on {url} carries image data"
        assert len(data) < 64 * 1024, f"a {len(data)}-byte frame on {url}"
        message = json.loads(data)
        assert message.pop("type") == "scores" and isinstance(message.pop("batch"), str), message
        scores_on_stream += check_batch(message)
    for r in requests:
        body: bytes = r["body"]
        assert not any(mark in body for mark in IMAGE_MARKS), f"{r['method']} {r['url']} carries image data"
        assert len(body) < 64 * 1024, f"{r['url']}: a {len(body)}-byte body"
    during = requests[start:]
    posts = [r for r in during if r["method"] != "GET"]
    assert all(r["url"].endswith(f"/api/sessions/{session['id']}/observations") for r in posts)
    scores_by_http = 0
    for r in posts:
        scores_by_http += check_batch(json.loads(r["body"]))
    assert scores_on_stream > 0, "the scores did not go on the student stream"  # it was open all along
    assert scores_on_stream + scores_by_http >= delivered
    with live_server.client(teacher.email, teacher.password) as api:
        stored = api.get(f"/api/sessions/{session['id']}/histogram").raise_for_status().json()["total"]
    assert stored >= delivered
