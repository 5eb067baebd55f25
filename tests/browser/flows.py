"""Steps the browser tests share: a teacher signs in and sets up a class, a student joins it."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from playwright.sync_api import Page, expect

from .conftest import LiveServer, Teacher

# The frame rate the student page's camera runs at (its preview's video track).
CAMERA_FPS = "document.getElementById('preview').srcObject.getVideoTracks()[0].getSettings().frameRate"


def sign_in(page: Page, teacher: Teacher, next_path: str = "/teacher") -> None:
    """Open a teacher page, get sent to the sign-in form, sign in and come back."""
    page.goto(next_path)
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("Email").fill(teacher.email)
    page.get_by_label("Password").fill(teacher.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(re.escape(next_path) + "$"))


def sign_in_at(page: Page, teacher: Teacher, next_path: str) -> None:
    """Sign in on the form a signed-out page sends to (``/login?next=``) and land on ``next_path``.

    Unlike :func:`sign_in`, the protected page is not loaded first only to be sent away: a chart page parses
    plotly.js before its script finds that nobody is signed in, seconds of CPU on a busy machine. That redirect is
    proven by the tests that use :func:`sign_in` (live page, report, admin, teacher page).
    """
    page.goto("/login?next=" + quote(next_path, safe=""))
    page.get_by_label("Email").fill(teacher.email)
    page.get_by_label("Password").fill(teacher.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(re.escape(next_path) + "$"))
    # The page's scripts have run (plotly.js included) and wired its controls: what :func:`sign_in`'s first load
    # of the page left cached for the second is paid here, under the context's timeout rather than an expect's 5 s.
    page.wait_for_load_state("load")


def create_started_session(page: Page, course: str, title: str) -> tuple[int, str]:
    """On /teacher: create a course and a session, start it; return (session id, join URL)."""
    page.get_by_label("Course title").fill(course)
    page.get_by_role("button", name="Create course").click()
    card = page.locator("article.course", has_text=course)
    card.get_by_label("New session title").fill(title)
    card.get_by_role("button", name="Create session").click()
    row = card.locator("tr[data-session-id]", has_text=title)
    row.get_by_role("button", name="Start").click()
    expect(row.locator(".pill")).to_have_text("live")
    session_id = int(row.get_attribute("data-session-id") or "0")
    join_url = row.locator("code.join").inner_text().strip()
    return session_id, join_url


def api_session(live: LiveServer, teacher: Teacher, *, title: str = "API class", start: bool = True,
                **patch: Any) -> dict[str, Any]:
    """Create (and start) a session through the API as ``teacher``; ``patch`` sets its privacy switches."""
    with live.client(teacher.email, teacher.password) as api:
        course = api.post("/api/courses", json={"title": f"{title} course"}).raise_for_status().json()
        session = api.post(f"/api/courses/{course['id']}/sessions", json={"title": title}).raise_for_status().json()
        if patch:
            session = api.patch(f"/api/sessions/{session['id']}", json=patch).raise_for_status().json()
        if start:
            session = api.post(f"/api/sessions/{session['id']}/start").raise_for_status().json()
    return session


def join(page: Page, join_url: str, name: str) -> None:
    """As a student: open the join link, type a name, consent, start the camera."""
    page.goto(join_url)
    page.get_by_label("Your name as the teacher will see it").fill(name)
    page.get_by_label("I agree that my camera is used").check()
    page.get_by_role("button", name="Start camera").click()
    expect(page.locator("#camera-card")).to_be_visible()


def acked(page: Page) -> int:
    """Frames of this student the server has acknowledged."""
    return int(page.locator("#acked").inner_text())
