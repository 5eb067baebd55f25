"""Page routes and static files over HTTP (no browser): shells render, scripts exist, nothing escapes ``static/``."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from classmood.config import Settings
from classmood.labels import LABELS
from classmood.server.web import mount_web
from classmood.server.web.assets import PLOTLY_URL, plotly_js_path

PAGES = ["/", "/login", "/join", "/join/ABC123", "/teacher", "/teacher/sessions/7", "/teacher/sessions/7/report",
         "/teacher/courses/3", "/admin"]


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI()
    mount_web(app, Settings())
    return TestClient(app)


@pytest.mark.parametrize("path", PAGES)
def test_page_renders_with_its_assets(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', r.text)
    assert any(a.startswith("/static/js/common.js") for a in assets)
    for asset in assets:
        s = client.get(asset)
        assert s.status_code == 200, asset
        assert s.headers["content-type"].split(";")[0] in ("text/javascript", "application/javascript", "text/css")


@pytest.mark.parametrize("path", ["/teacher/sessions/7", "/teacher/sessions/7/report", "/teacher/courses/3", "/admin",
                                  "/join/ABC123"])
def test_chart_pages_load_plotly_from_classmood(client: TestClient, path: str) -> None:
    html = client.get(path).text
    assert f'<script src="{PLOTLY_URL}"' in html
    assert "cdn" not in html.lower()


def test_plotly_is_served_from_the_wheel(client: TestClient) -> None:
    r = client.get("/static/vendor/plotly.min.js")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/javascript")
    path = plotly_js_path()
    assert path is not None and r.content == path.read_bytes()
    assert b"plotly.js (basic - minified)" in r.content[:200]


@pytest.mark.parametrize("path", ["/static/../pages.py", "/static/%2e%2e/pages.py", "/static/js/nope.js",
                                  "/static/../templates/base.html"])
def test_static_refuses_other_files(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_join_code_form_redirects_to_student_page(client: TestClient) -> None:
    r = client.get("/join", params={"code": " AB-12 "}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/join/AB-12"


def test_bad_join_code_gets_a_clear_error(client: TestClient) -> None:
    r = client.get("/join", params={"code": "<script>x</script>"})
    assert r.status_code == 400
    assert "<script>x" not in r.text and "&lt;script&gt;x" in r.text
    assert "join code" in r.text.lower()


def test_login_next_is_local_only(client: TestClient) -> None:
    assert '"/teacher/sessions/3"' in client.get("/login", params={"next": "/teacher/sessions/3"}).text
    evil = client.get("/login", params={"next": "//evil.example/x"}).text
    assert "evil.example" not in evil


def test_student_page_explains_and_asks_consent(client: TestClient) -> None:
    html = client.get("/join/ABC123").text
    assert 'id="consent"' in html and 'id="start" disabled' in html
    for label in LABELS:
        assert label in html
    config = re.search(r'<script id="cm-config" type="application/json">(.*?)</script>', html)
    assert config and '"code": "ABC123"' in config.group(1)


def test_inputs_have_labels(client: TestClient) -> None:
    for path in PAGES:
        html = client.get(path).text
        ids = re.findall(r'<(?:input|select)[^>]*\bid="([^"]+)"', html)
        for input_id in ids:
            assert f'for="{input_id}"' in html, f"{path}: #{input_id} has no <label for>"


def test_script_forms_cannot_submit_before_their_script(client: TestClient) -> None:
    """A form the page's script handles (no ``action``) posts if ever submitted natively, never a GET that would put
    its fields in the URL, and its submit buttons stay disabled until the script enables them (once its handler is
    attached, ``data-script-submit``; the student's once consent is given)."""
    forms = 0
    for path in PAGES:
        for attrs, body in re.findall(r"<form([^>]*)>(.*?)</form>", client.get(path).text, re.S):
            if "action=" in attrs:
                continue
            forms += 1
            assert 'method="post"' in attrs, f"{path}: <form{attrs}>"
            for button in re.findall(r'<button[^>]*type="submit"[^>]*>', body):
                assert " disabled" in button, f"{path}: {button}"
    assert forms >= 7  # sign-in, course, session, alert rule, topic (live and report), consent


def test_module_imports_are_revalidated(client: TestClient) -> None:
    """Modules import ./common.js without a version: it must be revalidated, and answer 304 while unchanged."""
    r = client.get("/static/js/common.js")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-cache"
    again = client.get("/static/js/common.js", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and not again.content
    assert "max-age=3600" in client.get("/static/js/common.js?v=1").headers["cache-control"]


def test_every_page_is_modules_without_a_global(client: TestClient) -> None:
    for path in ["/teacher", "/teacher/sessions/7", "/teacher/sessions/7/report", "/teacher/courses/3", "/admin",
                 "/login", "/join/ABC123"]:
        assert "legacy_cm.js" not in client.get(path).text
        scripts = re.findall(r'<script([^>]*)src="/static/js/([a-z_]+)\.js', client.get(path).text)
        assert scripts and all('type="module"' in attrs for attrs, _ in scripts), path
    for name in ["common", "live", "report", "teacher", "admin", "login", "docs", "student", "delivery", "outbox",
                 "camera", "ondevice"]:
        assert "window.CM" not in client.get(f"/static/js/{name}.js").text


def test_chart_minimums_reach_the_pages(client: TestClient) -> None:
    """The documented minimum below which a bar is drawn uncertain is in every page's config, and in its text."""
    from classmood.server.analytics.service import CHART_MIN_OBSERVATIONS, CHART_MIN_STUDENTS

    html = client.get("/teacher/sessions/7/report").text
    config = re.search(r'<script id="cm-config" type="application/json">(.*?)</script>', html)
    assert config and f'"chart_min_observations": {CHART_MIN_OBSERVATIONS}' in config.group(1)
    assert f"fewer than {CHART_MIN_OBSERVATIONS} observations" in html and f"or {CHART_MIN_STUDENTS} students" in html
    assert client.get("/teacher/courses/x<y").status_code == 404
