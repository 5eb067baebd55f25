"""Every page and answer carries the security headers; the CSP allows nothing remote; /docs is served locally."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from classmood.server.app import create_app

from .conftest import make_settings

PAGES = ["/", "/login", "/join", "/join?code=bad%20code", "/join/ABC234", "/join/not%20a%20code", "/teacher",
         "/teacher/sessions/1", "/teacher/sessions/1/report", "/admin", "/privacy", "/docs"]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    folder: Path = tmp_path_factory.mktemp("headers")
    app = create_app(make_settings(f"sqlite:///{folder / 'db.sqlite'}", folder / "data"))
    with TestClient(app) as test_client:
        yield test_client
    app.state.cm.engine.dispose()


def directives(csp: str) -> dict[str, list[str]]:
    return {part.split()[0]: part.split()[1:] for part in csp.split(";") if part.strip()}


def assert_secure(response: Any) -> None:
    headers = response.headers
    csp = directives(headers["content-security-policy"])
    assert csp["frame-ancestors"] == ["'none'"] and headers["x-frame-options"] == "DENY"
    assert csp["script-src"] == ["'self'", "'wasm-unsafe-eval'"]  # no inline scripts, no eval, nothing remote
    assert csp["default-src"] == ["'self'"] and csp["object-src"] == ["'none'"] and csp["base-uri"] == ["'none'"]
    assert "'self'" in csp["connect-src"] and "blob:" in csp["worker-src"]
    remote = [src for sources in csp.values() for src in sources if re.match(r"^(https?:|wss?:|\*)", src)]
    assert not remote, remote
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    assert "camera=(self)" in headers["permissions-policy"]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_carries_the_security_headers(client: TestClient, path: str) -> None:
    response = client.get(path, follow_redirects=False)
    assert response.status_code in (200, 303, 400, 404), response.status_code
    assert_secure(response)
    if response.headers.get("content-type", "").startswith("text/html"):
        # nothing on a page comes from elsewhere
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", response.text), path


def test_api_answers_and_errors_carry_them_too(client: TestClient) -> None:
    for response in (client.get("/api/health"), client.get("/api/me"), client.get("/api/nowhere"),
                     client.get("/static/css/app.css"), client.get("/openapi.json")):
        assert_secure(response)


def test_docs_are_served_locally_and_openapi_stays(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and "<script>" not in page.text  # no inline script: it would be blocked
    scripts = re.findall(r'src="([^"]+)"', page.text)
    assert scripts and all(src.startswith("/") for src in scripts)
    for src in [*scripts, "/static/vendor/swagger-ui/swagger-ui.css"]:
        asset = client.get(src)
        assert asset.status_code == 200 and len(asset.content) > 100, src
    assert client.get("/static/vendor/swagger-ui/index.html").status_code == 404
    assert client.get("/redoc").status_code == 404
    assert client.get("/openapi.json").json()["info"]["title"] == "ClassMood"


def test_privacy_page_is_linked_from_the_consent_text(client: TestClient) -> None:
    student = client.get("/join/ABC234").text
    consent = student[student.index('id="consent-card"'):student.index('id="consent-form"')]
    assert 'href="/privacy"' in consent
    privacy = client.get("/privacy").text
    for words in ("not</strong> know how you feel", "Delete my data", "Article 5(1)(f)", "aggregate-only", "grades"):
        assert words in privacy


def test_styles_need_no_unsafe_inline(client: TestClient) -> None:
    import base64
    import hashlib

    from classmood.server.security_headers import EMPTY_STYLE

    csp = directives(client.get("/login").headers["content-security-policy"])
    assert "'unsafe-inline'" not in csp["style-src"] and "'unsafe-inline'" not in csp["script-src"]
    # besides files of this server, only empty <style> elements (which plotly.js fills through the CSSOM)
    assert csp["style-src"] == ["'self'", EMPTY_STYLE]
    empty_hash = f"'sha256-{base64.b64encode(hashlib.sha256(b'').digest()).decode()}'"
    assert empty_hash == EMPTY_STYLE
    for path in PAGES:
        html = client.get(path).text
        assert not re.search(r"\sstyle\s*=", html), path  # style="" attributes would be refused
        assert not re.search(r"<style[^>]*>\s*[^<\s]", html), path  # so would a <style> with content


def test_chart_pages_pre_place_the_styles_plotly_would_inject(client: TestClient) -> None:
    from classmood.server.web.assets import plotly_js_path, plotly_style_ids

    path = plotly_js_path()
    assert path is not None, "plotly.js is not installed: npm ci"
    bundle = path.read_text(encoding="utf-8", errors="replace")
    ids = plotly_style_ids()
    assert all(f'getElementById("{i}")' in bundle for i in ids)
    if "maplibregl-map{" in bundle:  # plotly.js 3+ injects maplibre's CSS at load time
        assert ids
    report = client.get("/teacher/sessions/1/report").text
    assert all(f'<style id="{i}"></style>' in report for i in ids)
    if ids:  # before plotly.js runs
        assert report.index(f'<style id="{ids[0]}">') < report.index("plotly.min.js")
