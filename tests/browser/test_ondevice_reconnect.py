"""The server dies mid-class: the page keeps its scores in IndexedDB and replays them; each is stored once.

The server runs in a child process on a fixed port and SQLite file, so it can be killed (SIGKILL) and started
again at the same address. First the page stays open through the outage; then the page is closed during a
second outage and opened again after it: its scores come back from IndexedDB.
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

from classmood.benchmarks.servers import SERVER_CODE, free_port, wait_until_up

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


class Restartable:
    """``classmood``'s app under uvicorn in a child process that can be killed and started again."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.email, self.password = "admin@example.org", secrets.token_urlsafe(12)
        self.env = dict(os.environ, CLASSMOOD_DATA_DIR=str(data_dir), CLASSMOOD_DEV="1",
                        CLASSMOOD_ADMIN_EMAIL=self.email, CLASSMOOD_ADMIN_PASSWORD=self.password)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER_CODE, str(self.port)], env=self.env)
        wait_until_up(self.url, lambda: self.proc is not None and self.proc.poll() is None)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)  # no shutdown, no goodbye: as a crash
        self.proc.wait(timeout=10)


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[Restartable]:
    srv = Restartable(tmp_path)
    srv.start()
    yield srv
    if srv.proc and srv.proc.poll() is None:
        srv.proc.terminate()
        srv.proc.wait(timeout=15)


def _stored(server: Restartable, session_id: int, auth: dict[str, str]) -> list[str]:
    r = httpx.get(f"{server.url}/api/sessions/{session_id}/export.csv", headers=auth, timeout=30)
    r.raise_for_status()
    return [row["client_id"] for row in csv.DictReader(io.StringIO(r.text))]


def _device_session(server: Restartable) -> Any:
    """A teacher, a course and a live on-device session, through the API."""
    with httpx.Client(base_url=server.url, timeout=30) as api:
        admin = {"Authorization": "Bearer " + api.post("/api/auth/token", json={
            "email": server.email, "password": server.password}).raise_for_status().json()["access_token"]}
        email, password = f"t-{secrets.token_hex(4)}@example.org", secrets.token_urlsafe(12)
        api.post("/api/users", headers=admin, json={"email": email, "password": password, "name": "T",
                                                     "role": "teacher"}).raise_for_status()
        auth = {"Authorization": "Bearer " + api.post("/api/auth/token", json={
            "email": email, "password": password}).raise_for_status().json()["access_token"]}
        course = api.post("/api/courses", headers=auth, json={"title": "Crash"}).raise_for_status().json()
        session = api.post(f"/api/courses/{course['id']}/sessions", headers=auth,
                           json={"title": "Crash", "analysis_mode": "device"}).raise_for_status().json()
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
