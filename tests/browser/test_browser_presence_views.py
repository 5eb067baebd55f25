"""Who is there: tiles say "left" and "no face in view" on the dashboard; a student sees their own timeline."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from classmood.benchmarks.servers import tls
from classmood.labels import LABELS

from .conftest import LiveServer, Teacher
from .flows import acked, api_session, join, sign_in_at
from .test_browser_dashboard import _participant

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]
OWN_TIMELINE = ("import('/static/js/own_timeline.js').then((m) => m.refreshOwnTimeline("
                "window.cmStudent.join.token, window.cmStudent.info, {force: true}))"
                ".then((t) => t && t.buckets.length)")


def test_a_student_who_left_says_left(live_server: LiveServer, teacher: Teacher, context_factory) -> None:
    session = api_session(live_server, teacher, title="Roll call", frame_interval_s=0.5)
    dash = context_factory().new_page()
    sign_in_at(dash, teacher, f"/teacher/sessions/{session['id']}")
    student = context_factory().new_page()
    join(student, live_server.url + f"/join/{session['code']}", "Lea")
    student.wait_for_function("Number(document.getElementById('acked').textContent) >= 2")
    tile = dash.locator(".tile", has_text="Lea")
    expect(tile.locator(".state")).not_to_have_text("no face yet")
    expect(tile).not_to_have_class("tile away")
    # Mo's face was last seen a minute ago; since then only samples without a face arrive (the server's last_seen_ts)
    _no_face_since(live_server, _participant(live_server, session, "Mo"), face_ago_s=60)
    mo = dash.locator(".tile", has_text="Mo")
    expect(mo.locator(".state")).to_have_text("no face in view", timeout=15_000)
    expect(mo).to_have_class("tile away")
    student.get_by_role("button", name="Leave").click()
    # the dashboard's clock moves on 31 s: no waiting for real time
    dash.clock.install()
    dash.clock.fast_forward(31_000)
    for gone in (tile, mo):
        expect(gone.locator(".state")).to_have_text("left", timeout=10_000)
        expect(gone).to_have_class("tile away")
        expect(gone.locator(".when")).to_contain_text("last seen")


def _no_face_since(live: LiveServer, joined: dict[str, Any], *, face_ago_s: float) -> None:
    """One observation ``face_ago_s`` ago, then no-face samples up to now (a device's batch)."""
    now = time.time()
    probs = {name: (1.0 if name == "Happy" else 0.0) for name in LABELS}
    body = {"observations": [{"id": str(uuid.uuid4()), "ts": now - face_ago_s, "probs": probs}],
            "no_face": [{"id": str(uuid.uuid4()), "ts": now - k} for k in (2, 1, 0)]}
    r = httpx.post(f"{live.url}/api/sessions/{joined['session_id']}/observations", json=body,
                   headers={"Authorization": f"Bearer {joined['token']}"}, timeout=30, verify=tls())
    assert r.raise_for_status().json()["no_face"] == 3


def test_student_sees_their_own_timeline(live_server: LiveServer, teacher: Teacher, context_factory) -> None:
    session = api_session(live_server, teacher, title="Own view", show_self_to_students=True,
                          frame_interval_s=0.5)  # the fastest max_fps=2 allows: the readings come in half the time
    student = context_factory().new_page()
    join(student, live_server.url + f"/join/{session['code']}", "Max")
    student.wait_for_function("Number(document.getElementById('acked').textContent) >= 3")
    assert acked(student) >= 3
    # the page draws it by itself as its readings come back (student.js calls own_timeline.js)
    expect(student.locator("#own-timeline .bars path").first).to_be_attached(timeout=15_000)
    private = api_session(live_server, teacher, title="Private own view", aggregate_only=True,
                          frame_interval_s=0.5)
    other = context_factory().new_page()
    join(other, live_server.url + f"/join/{private['code']}", "Noa")
    other.wait_for_function("Number(document.getElementById('acked').textContent) >= 1")
    assert other.evaluate(OWN_TIMELINE) is None  # aggregate-only: not asked for, not drawn
    assert other.locator("#own-timeline").count() == 0


def test_students_to_check_on_show_their_rule(live_server: LiveServer, teacher: Teacher, context_factory) -> None:
    from .test_browser_dashboard import _send_scores

    session = api_session(live_server, teacher, title="Check on")
    _send_scores(live_server, _participant(live_server, session, "Ola"), "Sad", n=3)
    dash = context_factory().new_page()
    sign_in_at(dash, teacher, f"/teacher/sessions/{session['id']}")
    # the rule with its thresholds, on hover (title) and under "How students are picked"
    expect(dash.locator("#check-h")).to_have_attribute("title", re.compile(r"at least 40%.*at least 25%.*20 obs"))
    dash.get_by_text("How students are picked").click()
    expect(dash.locator("#check-rule")).to_contain_text("earlier in this session")
    expect(dash.locator("#check-thin")).to_have_text("Not enough data yet: Ola")  # never flagged on 3 readings
    expect(dash.locator("#check-list li")).to_have_count(0)
    expect(dash.locator("#presence .scatterlayer .trace")).to_have_count(2)  # students present, faces in view
