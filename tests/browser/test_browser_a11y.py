"""axe-core on every page, signed out, as a teacher and as an admin, with real data drawn: zero violations."""

from __future__ import annotations

import pytest

from .a11y import axe_violations
from .conftest import LiveServer, Teacher
from .flows import api_session, sign_in
from .test_browser_dashboard import _participant, _send_scores

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]


def _check(page, path: str, ready: str | None = None) -> list[str]:
    page.goto(path)
    if ready:
        page.wait_for_selector(ready)
    else:
        page.wait_for_load_state("networkidle")
    return [f"{path}: {v}" for v in axe_violations(page)]


def test_every_page_has_no_axe_violations(live_server: LiveServer, teacher: Teacher, context_factory) -> None:
    session = api_session(live_server, teacher, title="Axe class")
    for name, label in (("Ana", "Happy"), ("Ben", "Sad"), ("Cy", "Neutral")):
        _send_scores(live_server, _participant(live_server, session, name), label, n=4)
    with live_server.client(teacher.email, teacher.password) as api:
        api.post(f"/api/sessions/{session['id']}/topics", json={"title": "Quiz"}).raise_for_status()
    found: list[str] = []
    anonymous = context_factory().new_page()
    for path in ("/", "/login", "/join", "/privacy", f"/join/{session['code']}", "/docs"):
        found += _check(anonymous, path, ".swagger-ui .info .title" if path == "/docs" else None)
    page = context_factory(viewport={"width": 1280, "height": 900}).new_page()
    sign_in(page, teacher, "/teacher")
    page.wait_for_selector("tr[data-session-id]")
    found += _check(page, "/teacher", "tr[data-session-id]")
    found += _check(page, f"/teacher/sessions/{session['id']}", "body[data-ready='1']")
    page.locator(".tile").first.click()  # the student panel open, with its chart
    page.wait_for_selector("#student-chart .main-svg")
    found += [f"live, student panel: {v}" for v in axe_violations(page)]
    found += _check(page, f"/teacher/sessions/{session['id']}/report", "body[data-ready='1']")
    found += _check(page, f"/teacher/courses/{session['course_id']}", "body[data-ready='1']")
    admin = context_factory(viewport={"width": 1280, "height": 900}).new_page()
    sign_in(admin, Teacher(live_server.admin_email, live_server.admin_password, "Admin"), "/admin")
    found += _check(admin, "/admin", "body[data-ready='1']")
    assert not found, "axe-core violations:\n" + "\n".join(found)
