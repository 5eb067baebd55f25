"""The report after class: topics added, renamed, moved and deleted there; aggregate-only reports stay aggregate."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from .conftest import LiveServer, Teacher
from .flows import api_session, sign_in, sign_in_at
from .test_browser_dashboard import _participant, _send_scores

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


def _hhmmss(page, epoch: float) -> str:
    """The page's own local "HH:MM:SS" of an epoch (the browser's time zone, as the time inputs use)."""
    return str(page.evaluate("(t) => new Date(t * 1000).toTimeString().slice(0, 8)", epoch))


def test_topics_are_edited_after_class(live_server: LiveServer, teacher: Teacher, context_factory) -> None:
    session = api_session(live_server, teacher, title="Afterwards")
    for name in ("Ana", "Ben", "Cy"):
        _send_scores(live_server, _participant(live_server, session, name), "Neutral", n=5)
    started = time.monotonic()
    page = context_factory(viewport={"width": 1280, "height": 900}).new_page()
    sign_in(page, teacher, "/teacher")  # while the session runs on
    # the topics below start at whole, distinct seconds inside the session: it lasts 3.2 s, signing in included
    time.sleep(max(0.0, 3.2 - (time.monotonic() - started)))
    with live_server.client(teacher.email, teacher.password) as api:
        api.post(f"/api/sessions/{session['id']}/end").raise_for_status()
        ended = api.get(f"/api/sessions/{session['id']}").raise_for_status().json()
    page.goto(f"/teacher/sessions/{session['id']}/report")
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator("#topics-none")).to_be_visible()
    start = page.evaluate("(s) => Date.parse(s) / 1000", ended["started_at"])
    page.get_by_label("New topic").fill("Intro")
    page.get_by_label("from").fill(_hhmmss(page, start + 1.2))
    page.get_by_role("button", name="Add topic").click()
    rows = page.locator("#topics-table tbody tr")
    expect(rows).to_have_count(1)
    page.get_by_label("New topic").fill("Practice")
    page.get_by_label("from").fill(_hhmmss(page, start + 2.2))
    page.get_by_role("button", name="Add topic").click()
    expect(rows.locator("th")).to_have_text(["Intro", "Practice"])
    rows.nth(0).get_by_label("Title of topic Intro").fill("Introduction")  # rename
    rows.nth(0).get_by_role("button", name="Save").click()
    expect(rows.locator("th")).to_have_text(["Introduction", "Practice"])
    rows.nth(1).get_by_label("Start of topic Practice").fill(_hhmmss(page, start + 0.2))  # move it first
    rows.nth(1).get_by_role("button", name="Save").click()
    expect(rows.locator("th")).to_have_text(["Practice", "Introduction"])
    expect(page.locator("#segments .annotation-text")).to_have_text(["Practice", "Introduction"])
    page.get_by_role("button", name="Delete topic Practice").click()
    expect(rows.locator("th")).to_have_text(["Introduction"])
    with live_server.client(teacher.email, teacher.password) as api:
        topics = api.get(f"/api/sessions/{session['id']}/topics").raise_for_status().json()
    assert [t["title"] for t in topics] == ["Introduction"]


def test_aggregate_only_report_offers_no_student(live_server: LiveServer, teacher: Teacher, context_factory) -> None:
    session = api_session(live_server, teacher, title="Private report", aggregate_only=True)
    _send_scores(live_server, _participant(live_server, session, "Solo"), "Sad", n=5)
    with live_server.client(teacher.email, teacher.password) as api:
        api.post(f"/api/sessions/{session['id']}/topics", json={"title": "Quiz"}).raise_for_status()
    page = context_factory().new_page()
    sign_in_at(page, teacher, f"/teacher/sessions/{session['id']}/report")
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator("#students-note")).to_contain_text("Aggregate-only")
    expect(page.locator("#students-table")).to_be_hidden()
    expect(page.locator("#download-students-csv")).to_be_hidden()
    expect(page.locator("#topics-table tbody tr td").nth(2)).to_have_text("too few students")
    expect(page.locator("#whole-total")).to_contain_text("Too few students to show the class")
    assert "Solo" not in page.locator("main").inner_text()
