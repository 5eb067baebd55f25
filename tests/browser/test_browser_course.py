"""The course page: a row per session, the shares across sessions, the same topic compared across sessions."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from .conftest import LiveServer, Teacher
from .flows import sign_in
from .test_browser_dashboard import _participant, _send_scores

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


def _session(api, course_id: int, title: str) -> dict:
    session = api.post(f"/api/courses/{course_id}/sessions", json={"title": title}).raise_for_status().json()
    return api.post(f"/api/sessions/{session['id']}/start").raise_for_status().json()


def test_course_trend_page(live_server: LiveServer, teacher: Teacher, context_factory, screenshots: Path) -> None:
    with live_server.client(teacher.email, teacher.password) as api:
        course = api.post("/api/courses", json={"title": "Algebra"}).raise_for_status().json()
        first = _session(api, course["id"], "Week 1")
        api.post(f"/api/sessions/{first['id']}/topics", json={"title": "Quiz"}).raise_for_status()
        for name in ("Ana", "Ben", "Cy"):
            _send_scores(live_server, _participant(live_server, first, name), "Happy", n=10)
        api.post(f"/api/sessions/{first['id']}/end").raise_for_status()
        second = _session(api, course["id"], "Week 2")
        api.post(f"/api/sessions/{second['id']}/topics", json={"title": "quiz "}).raise_for_status()
        _send_scores(live_server, _participant(live_server, second, "Ana"), "Sad", n=4)
    page = context_factory(viewport={"width": 1280, "height": 900}).new_page()
    sign_in(page, teacher, "/teacher")
    page.get_by_role("link", name="Course over time: Algebra").click()
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator("#course-title")).to_have_text("Algebra")
    rows = page.locator("#sessions-table tbody tr")
    expect(rows.locator("th")).to_have_text(["Week 1", "Week 2"])  # oldest first
    expect(rows.nth(0).locator("td").nth(3)).to_have_text("30")
    expect(rows.nth(1).locator("td").nth(4)).to_have_text("100%")
    # Week 2's 4 observations from one student are drawn as uncertain, with their n in the tick
    expect(page.locator("#trend-chart .xtick text").nth(1)).to_contain_text("4 observations, 1 student")
    expect(page.locator("#same-table tbody tr")).to_have_count(2)  # "Quiz" and "quiz " are one topic
    expect(page.locator("#same-chart .trace")).to_have_count(1)
    page.screenshot(path=str(screenshots / "course-trend.png"), full_page=True)
