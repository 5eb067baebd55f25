"""The live dashboard: names are text, never markup; aggregate-only mode hides students; negative-share alerts."""

from __future__ import annotations

import time
import uuid
from typing import Any

import cv2
import httpx
import pytest
from playwright.sync_api import expect

from classmood.benchmarks.servers import tls
from classmood.labels import LABELS

from .conftest import LiveServer, Teacher
from .flows import api_session, sign_in, sign_in_at
from .media import astronaut_frame

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]
EVIL = '<img src=x onerror="window.__xss=1">Eve<script>window.__xss=2</script>'


def _participant(live: LiveServer, session: dict[str, Any], name: str) -> dict[str, Any]:
    # A student joins without an account (no admin token: a sign-in per call cost a round trip and a hash)
    r = httpx.post(live.url + "/api/join", json={"code": session["code"], "display_name": name, "consent": True},
                   timeout=30, verify=tls())
    return r.raise_for_status().json()


def _send_frame(live: LiveServer, joined: dict[str, Any]) -> dict[str, Any]:
    """POST one real JPEG of the astronaut as the participant."""
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(astronaut_frame(), cv2.COLOR_RGB2BGR))
    assert ok
    r = httpx.post(f"{live.url}/api/sessions/{joined['session_id']}/frames", content=jpeg.tobytes(), timeout=30,
                   headers={"Authorization": f"Bearer {joined['token']}", "Content-Type": "image/jpeg"}, verify=tls())
    return r.raise_for_status().json()


def _send_scores(live: LiveServer, joined: dict[str, Any], label: str, n: int = 3, at: float | None = None) -> None:
    """Scores computed on a device (the batch API): ``n`` observations that are all ``label``, the newest ``at``
    (default: now)."""
    probs = {name: (1.0 if name == label else 0.0) for name in LABELS}
    newest = time.time() if at is None else at
    batch = [{"id": str(uuid.uuid4()), "ts": newest - i * 0.1, "probs": probs} for i in range(n)]
    r = httpx.post(f"{live.url}/api/sessions/{joined['session_id']}/observations", json={"observations": batch},
                   headers={"Authorization": f"Bearer {joined['token']}"}, timeout=30, verify=tls())
    assert r.raise_for_status().json()["accepted"] == n


def test_student_name_is_escaped(live_server: LiveServer, teacher: Teacher, context_factory) -> None:
    session = api_session(live_server, teacher, title="Escaping")
    page = context_factory().new_page()
    sign_in(page, teacher, f"/teacher/sessions/{session['id']}")
    expect(page.locator("#conn")).to_have_text("live updates")
    joined = _participant(live_server, session, EVIL)
    assert _send_frame(live_server, joined)["faces"] == 1
    tile = page.locator(".tile", has_text="Eve")
    expect(tile.locator(".name")).to_have_text(EVIL)  # shown literally, as typed
    assert page.evaluate("window.__xss") is None
    assert page.locator("#tiles img, #tiles script").count() == 0
    page.goto(f"/teacher/sessions/{session['id']}/report")
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator("#students-table tbody td").first).to_have_text(EVIL)
    assert page.evaluate("window.__xss") is None


def test_aggregate_only_hides_students(live_server: LiveServer, teacher: Teacher, context_factory) -> None:
    session = api_session(live_server, teacher, title="Private", aggregate_only=True)
    joined = _participant(live_server, session, "Frank")
    _send_frame(live_server, joined)
    page = context_factory().new_page()
    sign_in_at(page, teacher, f"/teacher/sessions/{session['id']}")
    expect(page.locator("#tiles-note")).to_be_visible()
    expect(page.locator("#aggregate-only")).to_be_checked()
    expect(page.locator("#tiles")).to_be_hidden()
    assert page.locator(".tile", has_text="Frank").count() == 0
    # The class as a whole appears once a sealed cell holds min_faces (5) students: 2 s cells in these tests.
    expect(page.locator("#hist-note")).to_contain_text("Too few students")
    students = [_participant(live_server, session, f"Quiet{k}") for k in range(5)]
    happy = page.locator("#hist-table tr[data-label='Happy'] td").first
    deadline = time.time() + 20
    while time.time() < deadline and happy.text_content() in (None, "0"):
        # one reading time for all five: they share a cell however slowly a busy machine delivers them
        now = time.time()
        for joined in students:
            _send_scores(live_server, joined, "Happy", n=1, at=now)
        page.wait_for_timeout(400)
    expect(happy).not_to_have_text("0", timeout=5000)
    expect(page.locator("#hist-note")).to_contain_text("whole 2-second spans")
    expect(page.locator("#top-label")).to_have_text("Happy")
    assert page.locator(".tile").count() == 0


def test_negative_share_alert(live_server: LiveServer, teacher: Teacher, context_factory) -> None:
    """The rule typed on the dashboard is stored on the session; the server's alert arrives as an SSE event."""
    session = api_session(live_server, teacher, title="Alerts")
    page = context_factory().new_page()
    sign_in_at(page, teacher, f"/teacher/sessions/{session['id']}")
    page.get_by_label("Alert when the negative share is at least (%)").fill("60")
    page.get_by_label("for (seconds)").fill("1")
    page.get_by_label("for (seconds)").press("Enter")
    expect(page.locator("#alert-saved")).to_have_text("Rule saved for this session")
    with live_server.client(teacher.email, teacher.password) as api:
        stored = api.get(f"/api/sessions/{session['id']}").raise_for_status().json()
    assert (stored["alert_negative_share"], stored["alert_after_s"]) == (0.6, 1)
    joined = _participant(live_server, session, "Gus")
    _send_scores(live_server, joined, "Happy")
    expect(page.locator("#negative-share")).to_have_text("0%")
    expect(page.locator("#alerts li")).to_have_count(0)
    for name in ("Hal", "Ida"):  # the "now" chart counts faces by their steadied reading: 2 of 3 look sad
        _send_scores(live_server, _participant(live_server, session, name), "Sad")
    expect(page.locator("#negative-share")).to_have_text("67%")
    expect(page.locator("#alerts li")).to_have_count(1, timeout=20_000)
    expect(page.locator("#alerts li")).to_contain_text("67")
    with live_server.client(teacher.email, teacher.password) as api:
        [alert] = api.get(f"/api/sessions/{session['id']}/alerts").raise_for_status().json()
    assert page.locator("#alerts li").get_attribute("data-alert-id") == str(alert["id"])
    page.goto(f"/teacher/sessions/{session['id']}/report")  # the report lists it and marks it on the timeline
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator("#alerts li")).to_have_count(1)
    assert page.evaluate("document.getElementById('segments').data.some((t) => t.name === 'alert')")


def test_dashboard_reopens_its_stream_after_a_503(live_server: LiveServer, teacher: Teacher, context_factory) -> None:
    """A browser's EventSource gives up for good on an answer other than 200 (the database restarting answers 503):
    the dashboard opens a new stream after a backoff and shows live events again by itself."""
    session = api_session(live_server, teacher, title="Outage")
    page = context_factory().new_page()
    refused: list[str] = []

    def first_refused(route: Any) -> None:
        if not refused:  # the first stream meets the outage, the next ones the server
            refused.append(route.request.url)
            route.fulfill(status=503, headers={"Retry-After": "2"}, content_type="application/json",
                          body='{"detail": "the database is unavailable for a moment"}')
        else:
            route.continue_()

    page.route("**/api/sessions/*/live", first_refused)
    sign_in_at(page, teacher, f"/teacher/sessions/{session['id']}")
    expect(page.locator("#conn")).to_have_text("live updates", timeout=15_000)
    assert len(refused) == 1
    joined = _participant(live_server, session, "Ada")
    _send_scores(live_server, joined, "Happy", n=2)
    expect(page.locator(".tile", has_text="Ada")).to_be_visible()
