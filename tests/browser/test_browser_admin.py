"""The platform view: an admin sees the platform by course, teacher and hour; a teacher is turned away."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from .conftest import LiveServer, Teacher
from .flows import api_session, sign_in, sign_in_at
from .test_browser_dashboard import _participant, _send_scores

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


def test_admin_sees_platform_overview(live_server: LiveServer, teacher: Teacher, context_factory,
                                      screenshots: Path) -> None:
    session = api_session(live_server, teacher, title="Chemistry")
    joined = _participant(live_server, session, "Hana")
    _send_scores(live_server, joined, "Surprise", n=4)
    with live_server.client() as admin:
        total = admin.get("/api/platform/histogram").raise_for_status().json()["total"]
    page = context_factory(viewport={"width": 1280, "height": 900}).new_page()
    sign_in(page, Teacher(live_server.admin_email, live_server.admin_password, "Admin"), "/admin")
    page.wait_for_selector("body[data-ready='1']")
    expect(page.locator("#total")).to_have_text(str(total))
    expect(page.locator("#courses")).to_contain_text("Chemistry course")  # plotly draws names as SVG text
    expect(page.locator("#teachers")).to_contain_text(teacher.name)
    assert page.locator("#hours .trace").count() > 0
    page.screenshot(path=str(screenshots / "platform.png"), full_page=True)


def test_teacher_is_turned_away_from_platform_view(live_server: LiveServer, teacher: Teacher, context_factory) -> None:
    page = context_factory().new_page()
    sign_in_at(page, teacher, "/admin")
    expect(page.locator("#page-error")).to_have_text("The platform view is for administrators.")
