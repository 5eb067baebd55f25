"""The student page: no consent, no camera; pause stops frames; a lost connection loses and duplicates nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.sync_api import expect

from classmood.vision.search import SHIPPED

from .conftest import LiveServer, Teacher
from .flows import CAMERA_FPS, acked, api_session, join

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]
INTERVAL_S = 0.2  # the pace of the sessions whose frames a test waits for: the page's shortest

# Counts calls of getUserMedia before any page script runs, so a call cannot hide.
COUNT_GUM = """
window.__gumCalls = 0;
const original = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
navigator.mediaDevices.getUserMedia = (constraints) => { window.__gumCalls += 1; return original(constraints); };
"""
# Camera pictures the preview took in one second (requestVideoFrameCallback fires for each new one).
PRESENTED_IN_1S = """() => new Promise((done) => { let n = 0; const video = document.getElementById('preview');
  const count = () => { n += 1; video.requestVideoFrameCallback(count); }; video.requestVideoFrameCallback(count);
  setTimeout(() => done(n), 1000); })"""


def _join_url(live: LiveServer, session: dict[str, Any]) -> str:
    return f"{live.url}/join/{session['code']}"


def _stored(live: LiveServer, teacher: Teacher, session_id: int) -> int:
    with live.client(teacher.email, teacher.password) as api:
        return int(api.get(f"/api/sessions/{session_id}/histogram").raise_for_status().json()["total"])


def test_no_consent_no_camera(live_server: LiveServer, teacher: Teacher, context_factory) -> None:
    session = api_session(live_server, teacher, title="Consent")
    page = context_factory().new_page()
    page.add_init_script(COUNT_GUM)
    page.goto(_join_url(live_server, session))
    expect(page.locator("#session-title")).to_have_text("Consent")
    start = page.get_by_role("button", name="Start camera")
    expect(start).to_be_disabled()
    page.get_by_label("Your name as the teacher will see it").fill("Bob")
    expect(start).to_be_disabled()  # a name alone is not consent
    page.get_by_role("button", name="No, keep my camera off").click()
    expect(page.locator("#declined")).to_be_visible()
    assert page.evaluate("window.__gumCalls") == 0
    assert page.evaluate("document.getElementById('preview').srcObject") is None
    assert page.evaluate("window.cmStudent.ws") is None
    with live_server.client(teacher.email, teacher.password) as api:
        assert api.get(f"/api/sessions/{session['id']}/participants").raise_for_status().json() == []


def test_consent_starts_camera(live_server: LiveServer, teacher: Teacher, context_factory) -> None:
    session = api_session(live_server, teacher, title="Consent yes")
    page = context_factory().new_page()
    page.add_init_script(COUNT_GUM)
    join(page, _join_url(live_server, session), "Carla")
    page.wait_for_function("window.__gumCalls === 1 && document.getElementById('preview').videoWidth > 0")
    # the fake camera plays at 15 fps: the page asks for the shipped rate (server mode reads it from the page)
    assert page.evaluate(CAMERA_FPS) == SHIPPED.camera_fps


def test_pause_stops_frames(live_server: LiveServer, teacher: Teacher, context_factory) -> None:
    session = api_session(live_server, teacher, title="Pause", frame_interval_s=INTERVAL_S)
    page = context_factory().new_page()
    join(page, _join_url(live_server, session), "Dan")
    page.wait_for_function("Number(document.getElementById('acked').textContent) >= 2")
    pause = page.get_by_role("button", name="Pause camera")
    pause.click()
    expect(page.get_by_role("button", name="Resume camera")).to_have_attribute("aria-pressed", "true")
    page.wait_for_function("window.cmStudent.pending.size === 0")  # frames taken before the pause are delivered
    assert page.evaluate("document.getElementById('preview').srcObject") is None  # camera off
    sent, stored = page.evaluate("window.cmStudent.sent"), _stored(live_server, teacher, session["id"])
    page.wait_for_timeout(3 * 1000 * session.get("frame_interval_s", 1.0))
    assert page.evaluate("window.cmStudent.sent") == sent
    assert _stored(live_server, teacher, session["id"]) == stored
    page.get_by_role("button", name="Resume camera").click()
    page.wait_for_function(f"window.cmStudent.acked > {acked(page)}")


def test_reconnect_resends_unacknowledged_frames_once(live_server: LiveServer, teacher: Teacher,
                                                      context_factory) -> None:
    """Acks are withheld, then the socket drops; the page re-sends, the server stores every frame once."""
    session = api_session(live_server, teacher, title="Reconnect", frame_interval_s=INTERVAL_S)
    page = context_factory().new_page()
    replies: list[dict[str, Any]] = []
    withhold = {"on": True, "withheld": 0}

    def route(ws: Any) -> None:
        server = ws.connect_to_server()

        def to_page(message: str | bytes) -> None:
            replies.append(json.loads(message))
            if withhold["on"]:
                withhold["withheld"] += 1  # stored by the server, but the page never hears of it
            else:
                ws.send(message)

        server.on_message(to_page)
        if withhold["on"]:
            sockets.append((ws, server))

    sockets: list[Any] = []
    page.route_web_socket("**/stream?token=*", route)
    join(page, _join_url(live_server, session), "Eve")
    page.wait_for_function("window.cmStudent.pending.size >= 3", timeout=30_000)
    for _ in range(300):  # Playwright delivers the route's messages while the test waits in it
        if withhold["withheld"] >= 3:
            break
        page.wait_for_timeout(100)
    withhold["on"] = False
    page_side, server_side = sockets[0]
    page_side.close(code=1011, reason="simulated network loss")
    server_side.close()
    expect(page.locator("#conn")).to_have_text("connected", timeout=30_000)
    page.get_by_role("button", name="Pause camera").click()
    page.wait_for_function("window.cmStudent.pending.size === 0", timeout=30_000)

    acks = [r for r in replies if r.get("type") == "ack"]
    assert withhold["withheld"] >= 3
    assert any(r["duplicate"] for r in acks), "the re-sent frames should be recognised as duplicates"
    first = {r["id"]: r["faces"] for r in acks if not r["duplicate"]}
    acked = {r["id"] for r in acks}
    assert len(acked) == page.evaluate("window.cmStudent.sent")  # every frame id was answered: none lost
    # A frame the server stored just as the connection dropped lost its ack with it; re-sent, it is answered as a
    # duplicate (0 faces). It holds at most one face (the astronaut) and was stored once: no more than one each.
    lost_acks = len(acked) - len(first)
    assert sum(first.values()) <= _stored(live_server, teacher, session["id"]) <= sum(first.values()) + lost_acks


def test_hiding_the_preview_keeps_the_camera_analysed(live_server: LiveServer, teacher: Teacher,
                                                      context_factory) -> None:
    session = api_session(live_server, teacher, title="Hide self", frame_interval_s=INTERVAL_S)
    context = context_factory()
    page = context.new_page()
    join(page, _join_url(live_server, session), "Hana")
    page.wait_for_function("window.cmStudent.acked >= 1")
    switch = page.get_by_role("button", name="Hide my picture")
    expect(switch).to_have_attribute("aria-pressed", "false")
    switch.click()
    expect(page.locator("#preview")).to_be_hidden()  # visibility: hidden (still laid out, so still current)
    expect(page.get_by_role("button", name="Show my picture")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#preview-note")).to_be_visible()
    # the hidden video still takes new pictures (a display:none one stops: every grab would be the same old one)
    assert page.evaluate(PRESENTED_IN_1S) >= 3
    before = acked(page)
    page.wait_for_function(f"window.cmStudent.acked >= {before + 3}")  # still grabbed, sent and analysed
    assert page.evaluate("document.getElementById('preview').srcObject") is not None  # the camera stays on
    # the choice is this browser's: the next class page opens with the picture hidden
    again = context.new_page()
    join(again, _join_url(live_server, session), "Hana again")
    expect(again.locator("#preview")).to_be_hidden()
    again.get_by_role("button", name="Show my picture").click()
    expect(again.locator("#preview")).to_be_visible()
