"""Names and titles are plain text in every chart and table: plotly would render <a href> in labels as links.

Also: /docs (Swagger UI served locally) works under the pages' Content-Security-Policy.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import LiveServer, Teacher
from .flows import api_session, sign_in_at
from .test_browser_dashboard import _participant, _send_scores

pytestmark = [pytest.mark.browser, pytest.mark.timeout(150)]
LINK = '<a href="https://evil.example/">Click <b>me</b></a>'


def test_markup_in_names_is_shown_as_text_in_charts_and_tables(live_server: LiveServer, teacher: Teacher,
                                                               context_factory) -> None:
    session = api_session(live_server, teacher, title=LINK)
    for name in (LINK, "Bo"):
        _send_scores(live_server, _participant(live_server, session, name), "Happy", n=3)
    page = context_factory(viewport={"width": 1280, "height": 900}).new_page()
    sign_in_at(page, teacher, f"/teacher/sessions/{session['id']}/report")
    page.wait_for_selector("body[data-ready='1']")
    chart = page.locator("#students-chart")
    ticks = chart.locator(".ytick text")
    expect(ticks).to_have_count(2)
    # each tick: the name literally, markup included, then its sample size on a second line
    names = sorted(t.locator("tspan.line").first.text_content() or "" for t in ticks.all())
    assert names == sorted([LINK, "Bo"])
    assert all(t.endswith("3 observations") for t in ticks.all_text_contents())
    assert chart.locator("svg a").count() == 0 and chart.locator(".ytick [style*='bold']").count() == 0
    expect(page.locator("#students-table tbody tr td:first-child")).to_have_text([LINK, "Bo"])
    assert page.locator("#students-table a").count() == 0
    expect(page.locator("#session-title")).to_have_text("Report: " + LINK)

    admin = context_factory(viewport={"width": 1280, "height": 900}).new_page()
    sign_in_at(admin, Teacher(live_server.admin_email, live_server.admin_password, "Admin"), "/admin")
    admin.wait_for_selector("body[data-ready='1']")
    expect(admin.locator("#courses")).to_contain_text(f"{LINK} course")
    assert admin.locator("#courses svg a, #teachers svg a").count() == 0


def test_api_docs_work_under_the_csp(live_server: LiveServer, context_factory) -> None:
    page = context_factory().new_page()
    remote: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(live_server.url) else remote.append(r.url))
    page.goto("/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("ClassMood")
    expect(page.locator(".opblock").first).to_be_visible()
    assert not remote, remote
