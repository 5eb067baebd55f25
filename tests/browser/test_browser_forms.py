"""Forms handled in script, before and after their script runs: nothing a user types reaches a URL."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import LiveServer, Teacher

pytestmark = [pytest.mark.browser, pytest.mark.timeout(60)]


def test_sign_in_waits_for_its_script_and_never_puts_the_password_in_the_url(
        live_server: LiveServer, teacher: Teacher, context_factory: Any) -> None:
    page = context_factory().new_page()
    held: list[Any] = []
    script = re.compile(r"/static/js/login\.js")

    def hold(route: Any) -> None:  # the module is still loading (a slow link)
        held.append(route)

    page.route(script, hold)
    page.goto("/login?next=%2Fteacher", wait_until="commit")  # a module script holds back "DOMContentLoaded"
    button = page.get_by_role("button", name="Sign in")
    expect(button).to_be_disabled()
    page.get_by_label("Email").fill(teacher.email)
    page.get_by_label("Password").fill(teacher.password)
    page.get_by_label("Password").press("Enter")  # implicit submission: refused while the button is disabled
    page.wait_for_timeout(300)
    assert page.url.endswith("/login?next=%2Fteacher") and teacher.password not in page.url
    assert held  # the page did ask for its script
    for route in held:
        route.continue_()
    page.unroute(script)
    expect(button).to_be_enabled()
    page.get_by_label("Password").press("Enter")
    expect(page).to_have_url(re.compile(r"/teacher$"))
    assert teacher.password not in page.url
