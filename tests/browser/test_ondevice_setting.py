"""The teacher chooses, on the live dashboard, where a session's faces are analysed."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import LiveServer, Teacher
from .flows import api_session, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]


def test_teacher_sets_analysis_mode_and_fallback(live_server: LiveServer, teacher: Teacher, context_factory) -> None:
    session = api_session(live_server, teacher, title="Where", analysis_mode="server")
    page = context_factory().new_page()
    sign_in(page, teacher, f"/teacher/sessions/{session['id']}")
    # The dashboard renders the session once its first GET answers; a click before that would be overwritten.
    expect(page.locator("#session-title")).to_have_text("Where")
    device = page.get_by_label("Analyse on the students' devices")
    fallback = page.get_by_label("A device that cannot may send pictures to the server")
    expect(device).not_to_be_checked()
    expect(fallback).to_be_disabled()
    with page.expect_response(lambda r: r.request.method == "PATCH"):
        device.check()
    expect(fallback).to_be_enabled()
    with page.expect_response(lambda r: r.request.method == "PATCH"):
        fallback.check()
    with live_server.client(teacher.email, teacher.password) as api:
        now = api.get(f"/api/sessions/{session['id']}").raise_for_status().json()
        info = api.get(f"/api/join/{session['code']}").raise_for_status().json()
    assert (now["analysis_mode"], now["allow_server_fallback"]) == ("device", True)
    assert (info["analysis_mode"], info["allow_server_fallback"]) == ("device", True)
