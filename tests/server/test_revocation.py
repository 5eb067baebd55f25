"""Live streams end when the right to them ends, through a real uvicorn server, on SQLite and PostgreSQL.

The dashboard's event stream (SSE) closes within seconds of its login being logged out (bearer token or
cookie), expiring, its account being disabled, or its teacher losing the course; the student's WebSocket
closes, even while the student sends nothing, once the session ends, the participant is deleted or the
participant token expires.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, update
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from classmood.benchmarks.servers import tls
from classmood.server.accounts.models import User
from classmood.server.accounts.service import start_login
from classmood.server.app import create_app
from classmood.server.courses.models import Course
from classmood.server.observations.stream import CloseCode
from classmood.server.sessions.models import Participant
from classmood.server.threaded import ThreadedServer

from .conftest import PASSWORD, World, build_world, make_settings

# The streams check their right every CHECK_EVERY_S here (2 s in production): the tests wait for the close, not
# for a production period. A close must still come within two periods (the check, and the cache it reads).
CHECK_EVERY_S = 0.2
CLOSES_WITHIN_S = 4 * CHECK_EVERY_S + 3  # the period of the check, its cache, and a slow CI machine


@dataclass
class Live:
    """A running server, an HTTP client of it, and the populated platform."""

    url: str
    client: httpx.Client
    world: World
    app: Any


@pytest.fixture
def live(database_url: str, tmp_path: Path) -> Iterator[Live]:
    app = create_app(make_settings(database_url, tmp_path / "data", live_check_s=CHECK_EVERY_S))
    server = ThreadedServer(app).start()
    try:
        with httpx.Client(base_url=server.url, verify=tls()) as client:
            yield Live(server.url, client, build_world(client, app), app)  # type: ignore[arg-type]
    finally:
        server.stop()
        app.state.cm.engine.dispose()


class Stream(threading.Thread):
    """Reads a session's SSE stream until the server ends it (or the session ends: the page then closes it);
    keeps every event and when it ended."""

    def __init__(self, url: str, headers: dict[str, str] | None = None, cookies: httpx.Cookies | None = None) -> None:
        super().__init__(daemon=True)
        self.url, self.headers, self.cookies = url, headers or {}, cookies
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.opened = threading.Event()
        self.ended_at: float | None = None

    def run(self) -> None:
        event = ""
        with httpx.stream("GET", self.url, headers=self.headers, cookies=self.cookies, timeout=60,
                          verify=tls()) as response:
            assert response.status_code == 200, response.read()
            for line in response.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    self.events.append((event, json.loads(line[6:])))
                    self.opened.set()
                    if self.events[-1] == ("status", {"status": "ended"}):
                        break
        self.ended_at = time.monotonic()

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.events]


def watch(live: Live, **kwargs: Any) -> Stream:
    stream = Stream(f"{live.url}/api/sessions/{live.world.session_id}/live", **kwargs)
    stream.start()
    assert stream.opened.wait(10)
    return stream


def assert_ends(stream: Stream, since: float, status: int) -> None:
    stream.join(CLOSES_WITHIN_S)
    assert not stream.is_alive(), "the stream outlived its login"
    assert stream.ended_at is not None and stream.ended_at - since < CLOSES_WITHIN_S
    assert stream.kinds()[-1] == "end" and stream.events[-1][1]["status"] == status


def _disable(live: Live) -> None:
    with live.app.state.cm.sessions() as db:
        db.execute(update(User).where(User.id == live.world.teacher_a_id).values(is_active=False))
        db.commit()


def _take_course(live: Live) -> None:
    with live.app.state.cm.sessions() as db:
        db.execute(update(Course).where(Course.id == live.world.course_id).values(teacher_id=live.world.teacher_b_id))
        db.commit()


def _logout(live: Live) -> None:
    assert live.client.post("/api/auth/logout", headers=live.world.teacher_a).status_code == 204


REVOCATIONS: dict[str, tuple[Callable[[Live], None], int]] = {
    "bearer-logout": (_logout, 401), "disabled": (_disable, 401), "course-taken-away": (_take_course, 403)}


@pytest.mark.parametrize("how", list(REVOCATIONS))
def test_the_event_stream_ends_when_its_right_ends(live: Live, how: str) -> None:
    stream = watch(live, headers=live.world.teacher_a)
    other = watch(live, headers=live.world.admin)  # the admin's right is untouched
    revoke, status = REVOCATIONS[how]
    revoked_at = time.monotonic()
    revoke(live)
    assert_ends(stream, revoked_at, status)
    assert other.is_alive()
    assert live.client.get(f"/api/sessions/{live.world.session_id}/live",
                           headers=live.world.teacher_a).status_code == status
    live.client.post(f"/api/sessions/{live.world.session_id}/end", headers=live.world.admin)
    other.join(10)
    assert other.kinds()[-1] == "status"  # the admin's stream went on until the session ended


def test_the_event_stream_of_a_browser_ends_at_its_logout(live: Live) -> None:
    browser = httpx.Client(base_url=live.url, verify=tls())
    csrf = browser.post("/api/auth/login", json={"email": "a@test.org", "password": PASSWORD}).json()["csrf_token"]
    stream = watch(live, cookies=browser.cookies)
    logged_out = time.monotonic()
    assert browser.post("/api/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert_ends(stream, logged_out, 401)


def test_the_event_stream_ends_when_its_token_expires(live: Live) -> None:
    state = live.app.state.cm
    with state.sessions() as db:
        user = db.get(User, live.world.teacher_a_id)
        login_id = start_login(db, user=user, ttl_s=3600)
    token = state.signer.sign("api", {"uid": live.world.teacher_a_id, "sid": login_id}, ttl_s=2)
    stream = watch(live, headers={"Authorization": f"Bearer {token}"})
    assert_ends(stream, time.monotonic(), 401)  # within 2 s of expiry plus the check's period


# --- the student's WebSocket ------------------------------------------------------------------------------


def _ws_url(live: Live, token: str) -> str:
    return f"{live.url.replace('http', 'ws', 1)}/api/sessions/{live.world.session_id}/stream?token={token}"


def _closed_idle(live: Live, token: str, revoke: Callable[[], None]) -> tuple[int, dict[str, Any], float]:
    """Open the stream, send nothing, revoke; (close code, last message, seconds until closed)."""
    with connect(_ws_url(live, token)) as ws:
        time.sleep(0.2)  # connected and authenticated
        revoked_at = time.monotonic()
        revoke()
        last: dict[str, Any] = {}
        try:
            while True:
                last = json.loads(ws.recv(timeout=CLOSES_WITHIN_S))
        except ConnectionClosed:
            pass
        except TimeoutError:
            pytest.fail("the idle student stream stayed open")
        assert ws.close_code is not None
        return ws.close_code, last, time.monotonic() - revoked_at


def test_an_idle_student_stream_closes_when_the_session_ends(live: Live) -> None:
    world = live.world
    token = world.student["Authorization"].split()[1]
    code, last, took = _closed_idle(live, token, lambda: live.client.post(
        f"/api/sessions/{world.session_id}/end", headers=world.teacher_a).raise_for_status())
    assert code == CloseCode.SESSION_OVER and last["status"] == 409 and took < CLOSES_WITHIN_S


def test_an_idle_student_stream_closes_when_its_participant_is_deleted(live: Live) -> None:
    header, participant_id = live.world.join("Bob")

    def remove() -> None:
        with live.app.state.cm.sessions() as db:
            db.execute(delete(Participant).where(Participant.id == participant_id))
            db.commit()

    code, last, took = _closed_idle(live, header["Authorization"].split()[1], remove)
    assert code == CloseCode.UNAUTHORIZED and last["status"] == 401 and took < CLOSES_WITHIN_S


def test_an_idle_student_stream_closes_when_its_token_expires(live: Live) -> None:
    state = live.app.state.cm
    token = state.signer.sign("participant", {"pid": live.world.participant_id, "sid": live.world.session_id},
                              ttl_s=2)
    code, last, took = _closed_idle(live, token, lambda: None)
    assert code == CloseCode.UNAUTHORIZED and "expired" in last["detail"] and took < CLOSES_WITHIN_S
