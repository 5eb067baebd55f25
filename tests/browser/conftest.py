"""Fixtures of the browser tests: the real ClassMood app under uvicorn, and Debian's Chromium with a fake webcam.

The server runs ``create_app`` on a fresh SQLite file in a background thread of the test process, so
the tests can also look into its database through the API. Chromium's camera is a Y4M clip of
scikit-image's astronaut written at test time (``media.py``).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from classmood.benchmarks.servers import free_port, tls, wait_until_up

from ..conftest import CHEAP_HASHING

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@dataclass(frozen=True)
class LiveServer:
    """A running ClassMood server and its first admin."""

    url: str
    admin_email: str
    admin_password: str

    def client(self, email: str | None = None, password: str | None = None) -> httpx.Client:
        """An API client with a bearer token (the admin's unless told otherwise)."""
        r = httpx.post(self.url + "/api/auth/token", timeout=30,
                       json={"email": email or self.admin_email, "password": password or self.admin_password},
                       verify=tls())
        r.raise_for_status()
        bearer = {"Authorization": f"Bearer {r.json()['access_token']}"}
        return httpx.Client(base_url=self.url, timeout=30, headers=bearer, verify=tls())


@dataclass(frozen=True)
class Teacher:
    """A teacher account made through the API for one test."""

    email: str
    password: str
    name: str


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """``create_app`` on a temporary SQLite database, served by uvicorn in a background thread."""
    import uvicorn

    from classmood.config import Settings
    from classmood.server.app import create_app
    from classmood.server.bootstrap import prepare_server

    email, password = "admin@example.org", secrets.token_urlsafe(12)
    settings = Settings(data_dir=tmp_path_factory.mktemp("cm-browser"), dev=True, admin_email=email,
                        admin_password=password, **CHEAP_HASHING,
                        # sessions of the on-device tests say "device" themselves; aggregate-only cells short
                        # enough to watch them seal
                        analysis_mode="server", private_cell_s=2, private_seal_s=0.5,
                        # an alert rule of "for 1 s" fires within ~2 s instead of up to 5 s + 5 s (production: 5 s)
                        alert_check_s=1.0).resolved()
    prepare_server(settings)  # migrations and the first admin, as `classmood serve` does
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on", ws_max_size=4 * 1024 * 1024))
    thread = threading.Thread(target=server.run, name="classmood-test-server", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_until_up(url, thread.is_alive)
    yield LiveServer(url=url, admin_email=email, admin_password=password)
    server.should_exit = True
    thread.join(timeout=15)


def new_teacher(live: LiveServer, name: str = "Ms Frizzle", prefix: str = "teacher") -> Teacher:
    """A fresh teacher (own courses only) on ``live``, created by its admin through the API."""
    t = Teacher(email=f"{prefix}-{secrets.token_hex(4)}@example.org", password=secrets.token_urlsafe(12), name=name)
    with live.client() as admin:
        r = admin.post("/api/users", json={"email": t.email, "password": t.password, "name": t.name, "role": "teacher"})
        r.raise_for_status()
    return t


@pytest.fixture()
def teacher(live_server: LiveServer) -> Teacher:
    """A fresh teacher of the suite's live server."""
    return new_teacher(live_server)


@pytest.fixture(scope="session")
def fake_camera(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The astronaut as a Y4M clip for Chromium's fake camera."""
    from .media import astronaut_frame, write_y4m

    return write_y4m(tmp_path_factory.mktemp("camera") / "astronaut.y4m", astronaut_frame())


@pytest.fixture(scope="package")
def browser(fake_camera: Path) -> Iterator[Any]:
    """Debian's Chromium driven by Playwright, camera permission granted, camera = the astronaut clip.

    Package scope: Playwright's sync API keeps an event loop running in the main thread while it is
    open, which would break ``asyncio.run`` in the test packages that run after this one.
    """
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: run scripts/ensure-services.sh (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=[
            "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={fake_camera}", "--no-sandbox", "--disable-dev-shm-usage",
        ])
        yield browser
        browser.close()


# Every page reports what its Content-Security-Policy blocked as a console error with this prefix.
CSP_REPORTER = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline code"} in ${e.documentURI}`);
});
"""


def csp_violation(text: str) -> bool:
    """True for a console message that says the page's CSP blocked something."""
    return text.startswith("CSP violation:") or "Content Security Policy" in text


def _poll_function(page: Any, expression: str, arg: Any = None, timeout: float | None = None,
                   polling: Any = None) -> Any:
    """``Page.wait_for_function`` that works under the pages' CSP.

    Playwright's own evaluates its predicate with ``eval`` inside the page, which ``script-src`` without
    ``'unsafe-eval'`` forbids (and reports as a violation); ``page.evaluate`` goes through the DevTools
    protocol, which the CSP does not govern. Same arguments, same timeout error.
    """
    from playwright.sync_api import Error, TimeoutError

    deadline = time.monotonic() + (30_000 if timeout is None else timeout) / 1000
    interval = polling / 1000 if isinstance(polling, int | float) else 0.05
    while True:
        try:
            value = page.evaluate(expression, arg)
        except Error as exc:
            if "Execution context was destroyed" not in str(exc):  # a navigation: try again on the new page
                raise
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"wait_for_function timed out after {timeout} ms: {expression}")
        time.sleep(interval)


@pytest.fixture(autouse=True)
def _csp_safe_wait_for_function(monkeypatch: pytest.MonkeyPatch) -> None:
    from playwright.sync_api import Page

    monkeypatch.setattr(Page, "wait_for_function", _poll_function)


@pytest.fixture()
def context_factory(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    """New isolated browser contexts (one per person), closed after the test.

    The pages must work under their Content-Security-Policy: a violation on any page fails the test.
    """
    contexts: list[Any] = []
    violations: list[str] = []

    def on_console(message: Any) -> None:
        if message.type == "error" and csp_violation(message.text):
            violations.append(f"{message.page.url if message.page else '?'}: {message.text}")

    def make(**kwargs: Any) -> Any:
        ctx = browser.new_context(base_url=live_server.url, accept_downloads=True, **kwargs)
        ctx.set_default_timeout(20_000)
        ctx.add_init_script(CSP_REPORTER)
        ctx.on("console", on_console)
        contexts.append(ctx)
        return ctx

    yield make
    for ctx in contexts:
        ctx.close()
    assert not violations, "Content-Security-Policy violations:\n" + "\n".join(violations)


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """Folder of the screenshots the tests save (git-ignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
