"""The server dies mid-class: the page keeps its scores in IndexedDB and replays them; each is stored once.

The server runs in a child process on a fixed port and SQLite file, so it can be killed (SIGKILL) and started
again at the same address. First the page stays open through the outage; then the page is closed during a
second outage and opened again after it: its scores come back from IndexedDB.

Each next server process is started ahead, while the current one serves: it imports ClassMood and waits; told
to go, it opens the database, migrates and serves as ``SERVER_CODE`` does. So a restart after a crash does all
of a server's start but Python's imports, and the outages (and the page's backoff after them) stay short. The
session takes a picture every 0.2 s (the page's shortest pace), so the scores that pile up come in seconds.
"""

from __future__ import annotations

import csv
import io
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from classmood.benchmarks.servers import SERVER_CODE, free_port, tls, wait_until_up

from ..conftest import cheap_hashing_env

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


INTERVAL_S = 0.2
# A server process started ahead: the imports of SERVER_CODE, then it waits for a line on stdin ("go": run
# SERVER_CODE, which opens the database and migrates after the crash; anything else, or none: exit).
STANDBY_CODE = """
import sys, uvicorn
from classmood.config import Settings
from classmood.server.app import create_app, uvicorn_options
from classmood.server.bootstrap import prepare_server
if sys.stdin.readline().strip() != "go":
    sys.exit(0)
""" + SERVER_CODE


class Restartable:
    """``classmood``'s app under uvicorn in a child process that can be killed and started again."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.email, self.password = "admin@example.org", secrets.token_urlsafe(12)
        # cheap password hashing (as the other browser tests' server): its sign-ins are not what is tested
        self.env = dict(os.environ, CLASSMOOD_DATA_DIR=str(data_dir), CLASSMOOD_DEV="1",
                        CLASSMOOD_ADMIN_EMAIL=self.email, CLASSMOOD_ADMIN_PASSWORD=self.password,
                        **cheap_hashing_env())
        self.proc: subprocess.Popen[bytes] | None = None
        self.standby = self._standby()

    def _standby(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-c", STANDBY_CODE, str(self.port)], env=self.env,
                                stdin=subprocess.PIPE)

    def start(self) -> None:
        self.proc, self.standby = self.standby, None
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.close()
        wait_until_up(self.url, lambda: self.proc is not None and self.proc.poll() is None)
        self.standby = self._standby()  # the next start's imports, while this one serves

    def stop(self) -> None:
        """The end of the test: the server stops cleanly, the standby without serving."""
        if self.standby is not None:  # still importing, or waiting for its "go": it never served
            self.standby.terminate()
            self.standby.wait(timeout=15)
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)  # no shutdown, no goodbye: as a crash
        self.proc.wait(timeout=10)


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[Restartable]:
    srv = Restartable(tmp_path)
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()


def _stored(server: Restartable, session_id: int, auth: dict[str, str]) -> list[str]:
    r = httpx.get(f"{server.url}/api/sessions/{session_id}/export.csv", headers=auth, timeout=30, verify=tls())
    r.raise_for_status()
    return [row["client_id"] for row in csv.DictReader(io.StringIO(r.text))]


def _device_session(server: Restartable) -> Any:
    """A teacher, a course and a live on-device session, through the API."""
    with httpx.Client(base_url=server.url, timeout=30, verify=tls()) as api:
        admin = {"Authorization": "Bearer " + api.post("/api/auth/token", json={
            "email": server.email, "password": server.password}).raise_for_status().json()["access_token"]}
        email, password = f"t-{secrets.token_hex(4)}@example.org", secrets.token_urlsafe(12)
        api.post("/api/users", headers=admin, json={"email": email, "password": password, "name": "T",
                                                     "role": "teacher"}).raise_for_status()
        auth = {"Authorization": "Bearer " + api.post("/api/auth/token", json={
            "email": email, "password": password}).raise_for_status().json()["access_token"]}
        course = api.post("/api/courses", headers=auth, json={"title": "Crash"}).raise_for_status().json()
        session = api.post(f"/api/courses/{course['id']}/sessions", headers=auth,
                           json={"title": "Crash", "analysis_mode": "device",
                                 "frame_interval_s": INTERVAL_S}).raise_for_status().json()
        api.post(f"/api/sessions/{session['id']}/start", headers=auth).raise_for_status()
    return SimpleNamespace(session_id=session["id"], code=session["code"], auth=auth)


def _wait(page: Any, predicate: str, timeout_s: float = 60) -> None:
    page.wait_for_function(predicate, timeout=timeout_s * 1000)


def test_scores_survive_a_server_crash_and_a_reload(server: Restartable, browser: Any) -> None:
    made = _device_session(server)
    context = browser.new_context(base_url=server.url)
    context.set_default_timeout(60_000)
    page = context.new_page()
    page.goto(f"/join/{made.code}")
    page.get_by_label("Your name as the teacher will see it").fill("Rosa")
    page.get_by_label("I agree that my camera is used").check()
    page.get_by_role("button", name="Start camera").click()
    _wait(page, "() => window.cmStudent.acked >= 3", 90)

    # 1. The server crashes while the page keeps analysing: scores wait on the device, then go.
    server.kill()
    sent_at_kill = page.evaluate("() => window.cmStudent.sent")
    _wait(page, f"() => window.cmStudent.sent >= {sent_at_kill + 4} && window.cmStudent.outbox.size() >= 3")
    assert "offline" in page.locator("#conn").inner_text()
    server.start()
    _wait(page, "() => window.cmStudent.outbox.size() === 0 && !window.cmStudent.offline", 60)

    # 2. Another crash, and the student closes the page before the server is back: IndexedDB keeps the scores.
    server.kill()
    before = page.evaluate("() => window.cmStudent.sent")
    _wait(page, f"() => window.cmStudent.sent >= {before + 3}")
    page.get_by_role("button", name="Pause camera").click()  # no new scores: the count below is final
    _wait(page, "() => window.cmStudent.timer === null && !window.cmStudent.busy", 10)  # the last tick is queued
    sent, waiting = page.evaluate("() => [window.cmStudent.sent, window.cmStudent.outbox.size()]")
    assert waiting >= 3
    page.close()
    server.start()
    again = context.new_page()
    again.goto(f"/join/{made.code}")  # not joined again: the page only delivers what it had kept
    _wait(again, "() => window.cmStudent.outbox && window.cmStudent.outbox.size() === 0", 60)

    ids = _stored(server, made.session_id, made.auth)
    assert len(ids) == sent, f"{sent} scores computed, {len(ids)} stored"  # none lost
    assert len(set(ids)) == len(ids)  # none twice
    context.close()
