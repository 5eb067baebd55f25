"""A device that cannot analyse: far too slow for the class's pace, or given no model. With the teacher's
fallback, its camera's pictures go to the server instead and are analysed there; without it, its camera stops and
the page says why."""

from __future__ import annotations

import csv
import io
import json
import time
from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import LiveServer, Teacher
from .flows import api_session, join

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


def _config_changed(page: Any, **changes: Any) -> None:
    """The page's ``GET /api/ondevice/config`` answered by the server, with ``changes`` made to it."""

    def answer(route: Any) -> None:
        response = route.fetch()
        route.fulfill(response=response, body=json.dumps({**response.json(), **changes}))

    page.route("**/api/ondevice/config", answer)


def test_a_device_too_slow_for_the_class_falls_back_to_the_server(live_server: LiveServer, teacher: Teacher,
                                                                  context_factory: Any) -> None:
    session = api_session(live_server, teacher, title="Slow laptop", analysis_mode="device",
                          allow_server_fallback=True, frame_interval_s=0.5)
    page = context_factory().new_page()
    _config_changed(page, max_frame_ms=0.01)  # every real frame takes longer: the device counts as too slow
    join(page, f"{live_server.url}/join/{session['code']}", "Pat")
    # the verdict needs the runtime and the model loaded, then a few frames: more than expect's 5 s on a busy machine
    expect(page.locator("#join-error")).to_contain_text("it needs", timeout=30_000)
    expect(page.locator("#join-error")).to_contain_text("sent to the server")
    page.wait_for_function("() => window.cmStudent.mode === 'server'", timeout=30_000)
    assert 3 <= page.evaluate("window.cmStudent.frameMs.length") <= 5  # it stopped once it was found too slow
    deadline = time.monotonic() + 60
    while (sources := _sources(live_server, teacher, session["id"])).count("frame") < 2:
        assert time.monotonic() < deadline, f"no frame analysed on the server: {sources}"
        page.wait_for_timeout(250)
    assert sources.count("device") <= 2  # only the scores of the frames before the verdict came from the device


def _sources(live: LiveServer, teacher: Teacher, session_id: int) -> list[str]:
    """Where each stored observation of the session was analysed ("device" or "frame": on the server)."""
    with live.client(teacher.email, teacher.password) as api:
        export = api.get(f"/api/sessions/{session_id}/export.csv").raise_for_status().text
    return [row["source"] for row in csv.DictReader(io.StringIO(export))]


def test_without_a_model_and_no_fallback_the_camera_stays_off(live_server: LiveServer, teacher: Teacher,
                                                             context_factory: Any) -> None:
    session = api_session(live_server, teacher, title="No model", analysis_mode="device")
    page = context_factory().new_page()
    _config_changed(page, runtime={"available": False})
    frames: list[str] = []
    page.on("request", lambda r: frames.append(r.url) if r.url.endswith("/frames") else None)
    join(page, f"{live_server.url}/join/{session['code']}", "Sam")
    expect(page.locator("#join-error")).to_contain_text("the server has no in-browser runtime installed")
    expect(page.locator("#join-error")).to_contain_text("your camera stays off")
    expect(page.locator("#conn")).to_have_text("not measured")
    assert page.evaluate("window.cmStudent.camera.on") is False and not frames
