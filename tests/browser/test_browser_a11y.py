"""axe-core on every page, signed out, as a teacher and as an admin, with real data drawn: zero violations."""

from __future__ import annotations

from typing import Any

import pytest

from .a11y import axe_violations
from .conftest import LiveServer, Teacher
from .flows import api_session, sign_in, sign_in_at
from .test_browser_dashboard import _participant, _send_scores

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]


def _check(page, path: str, ready: str | None = None) -> list[str]:
    # goto returns once the page has loaded (its deferred and module scripts have run); a page that draws from
    # the API says when it is done (``ready``). Waiting for network idle instead cost 0.5 s of silence per page.
    page.goto(path)
    if ready:
        page.wait_for_selector(ready)
    return [f"{path}: {v}" for v in axe_violations(page)]


def _class_with_data(live_server: LiveServer, teacher: Teacher) -> dict[str, Any]:
    session = api_session(live_server, teacher, title="Axe class")
    for name, label in (("Ana", "Happy"), ("Ben", "Sad"), ("Cy", "Neutral")):
        _send_scores(live_server, _participant(live_server, session, name), label, n=4)
    with live_server.client(teacher.email, teacher.password) as api:
        api.post(f"/api/sessions/{session['id']}/topics", json={"title": "Quiz"}).raise_for_status()
    return session


def _no_violations(found: list[str]) -> None:
    assert not found, "axe-core violations:\n" + "\n".join(found)


# Three tests rather than one: the pages are the same, and the suite's workers share them out.
def test_signed_out_pages_have_no_axe_violations(live_server: LiveServer, teacher: Teacher, context_factory) -> None:
    session = api_session(live_server, teacher, title="Axe class")
    found: list[str] = []
    anonymous = context_factory().new_page()
    for path in ("/", "/login", "/join", "/privacy"):
        found += _check(anonymous, path)
    # the student page is checked once it has shown the class it joins (its title comes from the API)
    found += _check(anonymous, f"/join/{session['code']}", "#session-title:text-is('Axe class')")
    found += _check(anonymous, "/docs", ".swagger-ui .info .title")
    _no_violations(found)


def test_teacher_pages_have_no_axe_violations(live_server: LiveServer, teacher: Teacher, context_factory) -> None:
    session = _class_with_data(live_server, teacher)
    found: list[str] = []
    page = context_factory(viewport={"width": 1280, "height": 900}).new_page()
    sign_in(page, teacher, "/teacher")  # the sign-in form leads back to /teacher: checked there, not loaded twice
    page.wait_for_selector("tr[data-session-id]")
    found += [f"/teacher: {v}" for v in axe_violations(page)]
    found += _check(page, f"/teacher/sessions/{session['id']}", "body[data-ready='1']")
    page.locator(".tile").first.click()  # the student panel open, with its chart
    page.wait_for_selector("#student-chart .main-svg")
    found += [f"live, student panel: {v}" for v in axe_violations(page)]
    found += _check(page, f"/teacher/sessions/{session['id']}/report", "body[data-ready='1']")
    found += _check(page, f"/teacher/courses/{session['course_id']}", "body[data-ready='1']")
    _no_violations(found)


def test_admin_page_has_no_axe_violations(live_server: LiveServer, teacher: Teacher, context_factory) -> None:
    _class_with_data(live_server, teacher)  # the platform view with data drawn
    admin = context_factory(viewport={"width": 1280, "height": 900}).new_page()
    sign_in_at(admin, Teacher(live_server.admin_email, live_server.admin_password, "Admin"), "/admin")
    admin.wait_for_selector("body[data-ready='1']")  # the sign-in form left it on /admin: checked there
    _no_violations([f"/admin: {v}" for v in axe_violations(admin)])
