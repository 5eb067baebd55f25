"""Faces in view, the student's side: on a tick where the on-device analysis finds no face, the page sends one
"no face" sample (an id and a time, no numbers) through the same outbox as its scores, and the server counts the
student present without a face in view for those seconds."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from .conftest import LiveServer, Teacher
from .flows import api_session, join
from .ondevice import chromium, face_frames, write_clip

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]
INTERVAL_S = 0.2  # the session's pace: the page's shortest, so each picture of the clip gets many ticks
HOLD = 20  # video frames (10 a second) of each picture: 2 s, so every stretch holds a whole second of its own


def _batches(frames: list[str | bytes], posts: list[bytes]) -> list[dict[str, Any]]:
    """Every device batch the page sent, on the stream or by HTTP."""
    out = [json.loads(p) for p in frames]
    return [m for m in out if m.get("type") == "scores"] + [json.loads(b) for b in posts]


def _seconds(live: LiveServer, teacher: Teacher, session_id: int) -> list[tuple[int, int]]:
    """(students present, faces in view) of each second of the session, as the server counts them."""
    with live.client(teacher.email, teacher.password) as api:
        presence = api.get(f"/api/sessions/{session_id}/presence", params={"bucket_s": 1}).raise_for_status()
    return [(b["present"], b["faces_in_view"]) for b in presence.json()["buckets"]]


def _settled(seconds: list[tuple[int, int]]) -> set[tuple[int, int]]:
    """The seconds before the last one with a sample: the page delivers in order, so no later sample lands in them
    (the last one may still be filling: away now, in view at its next tick)."""
    last = max((k for k, (present, _) in enumerate(seconds) if present), default=0)
    return set(seconds[:last])


def test_ticks_without_a_face_are_sent_as_no_face_samples(live_server: LiveServer, teacher: Teacher, browser: Any,
                                                           tmp_path: Path) -> None:
    portrait = face_frames()["portrait"]
    empty = np.full_like(portrait, 128)  # the student stepped away: a grey wall
    camera = write_clip(tmp_path / "away.y4m", [portrait, empty], hold=HOLD)  # in a loop
    session = api_session(live_server, teacher, title="Away", analysis_mode="device", frame_interval_s=INTERVAL_S)
    with chromium(browser, camera) as other:
        context = other.new_context(base_url=live_server.url)
        context.set_default_timeout(30_000)
        page = context.new_page()
        frames: list[str | bytes] = []
        posts: list[bytes] = []

        def record(request: Any) -> None:
            if request.method == "POST" and request.url.endswith("/observations"):
                posts.append(request.post_data_buffer or b"")

        page.on("websocket", lambda ws: ws.on("framesent", lambda payload: frames.append(payload)))
        page.on("request", record)
        join(page, f"{live_server.url}/join/{session['code']}", "Noor")
        page.wait_for_function("() => window.cmStudent.noFace >= 2 && window.cmStudent.acked >= 2", timeout=90_000)
        deadline = time.monotonic() + 30  # until the server has whole seconds away and in view (checked below)
        while not {(1, 0), (1, 1)} <= _settled(_seconds(live_server, teacher, session["id"])):
            assert time.monotonic() < deadline, "no whole second away from and in front of the camera"
            page.wait_for_timeout(200)
        page.get_by_role("button", name="Pause camera").click()
        context.close()

    batches = _batches(frames, posts)
    faces = [o for b in batches for o in b["observations"]]
    empty_ticks = [s for b in batches for s in b.get("no_face", [])]
    assert len(empty_ticks) >= 2 and faces
    assert all(set(s) == {"id", "ts"} for s in empty_ticks)  # no probabilities, no score: nothing but the time
    face_ticks = {o["ts"] for o in faces}
    times = [s["ts"] for s in empty_ticks]
    assert not face_ticks & set(times)  # a tick has faces or a no-face sample, never both
    sent_once = {s["id"]: s["ts"] for s in empty_ticks}  # a batch sent again after a reconnect repeats ids
    assert len(set(sent_once.values())) == len(sent_once)  # one sample per tick at most
    span, interval = max(times) - min(times), session.get("frame_interval_s", 1.0)
    assert len(sent_once) <= span / interval + 2  # no faster than the sampling pace
    seconds = _seconds(live_server, teacher, session["id"])
    assert (1, 0) in seconds and (1, 1) in seconds  # seconds away from the camera, and seconds in view
    assert sum(p or 0 for p, _ in seconds) <= len(sent_once) + len(face_ticks)  # each a sample it was sent
