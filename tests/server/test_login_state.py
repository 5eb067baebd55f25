"""Logins kept server-side: bearer tokens revoked by logout, and a login throttle shared by server processes.

Both run on the real databases (SQLite file and PostgreSQL), with two app instances on one database standing
in for two server processes behind a load balancer.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from classmood.server.accounts.models import LoginSession, LoginThrottleRow, User
from classmood.server.accounts.service import end_all_logins
from classmood.server.accounts.throttle import DatabaseBuckets, LoginThrottle, Policy
from classmood.server.app import create_app
from classmood.server.db import utcnow

from .conftest import PASSWORD, World, bearer, make_settings


def token_of(header: dict[str, str]) -> str:
    return header["Authorization"].removeprefix("Bearer ")


def test_logout_with_a_bearer_token_revokes_it_and_only_it(world: World) -> None:
    client = world.client
    first, second = bearer(client, "a@test.org"), bearer(client, "a@test.org")
    browser = TestClient(client.app)
    browser.post("/api/auth/login", json={"email": "a@test.org", "password": PASSWORD})
    for header in (first, second):
        assert client.get("/api/me", headers=header).status_code == 200

    assert client.post("/api/auth/logout", headers=first).status_code == 204

    for path in ("/api/me", "/api/courses"):
        refused = client.get(path, headers=first)
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    # the user's other logins, API and browser, live on
    assert client.get("/api/me", headers=second).json()["email"] == "a@test.org"
    assert browser.get("/api/me").json()["email"] == "a@test.org"
    # a participant of the teacher's session is not affected
    assert client.get("/api/me", headers=world.student).json()["participant"]["display_name"] == "Ann"
    assert client.post("/api/auth/logout", headers=first).status_code == 204  # twice: still fine


def test_ending_all_logins_or_disabling_the_account_revokes_every_token(world: World) -> None:
    client, state = world.client, client_state(world)
    token = bearer(client, "a@test.org")
    browser = TestClient(client.app)
    browser.post("/api/auth/login", json={"email": "a@test.org", "password": PASSWORD})
    with state.sessions() as db:
        assert end_all_logins(db, user_id=world.teacher_a_id) >= 2
    assert client.get("/api/me", headers=token).status_code == 401
    assert browser.get("/api/me").status_code == 401
    assert client.get("/api/me", headers=world.teacher_b).status_code == 200  # another user's

    fresh = bearer(client, "b@test.org")
    with state.sessions() as db:
        db.execute(update(User).where(User.id == world.teacher_b_id).values(is_active=False))
        db.commit()
    assert client.get("/api/me", headers=fresh).status_code == 401


def client_state(world: World) -> Any:
    return world.client.app.state.cm  # type: ignore[attr-defined]


def test_tokens_without_a_live_login_of_their_user_are_refused(world: World) -> None:
    client, state = world.client, client_state(world)
    # the stateless format of before: no login id, cannot be revoked, so never honoured
    legacy = state.signer.sign("api", {"uid": world.teacher_a_id}, 3600)
    assert client.get("/api/me", headers={"Authorization": f"Bearer {legacy}"}).status_code == 401
    with state.sessions() as db:
        login_id = db.scalar(select(LoginSession.id).where(LoginSession.user_id == world.teacher_a_id))
    # a login of teacher A cannot carry teacher B (even with a validly signed token)
    crossed = state.signer.sign("api", {"uid": world.teacher_b_id, "sid": login_id}, 3600)
    assert client.get("/api/me", headers={"Authorization": f"Bearer {crossed}"}).status_code == 401
    # an expired login row is refused even while the token's own expiry is ahead
    with state.sessions() as db:
        db.execute(update(LoginSession).where(LoginSession.user_id == world.teacher_a_id)
                   .values(expires_at=utcnow() - timedelta(seconds=1)))
        db.commit()
    assert client.get("/api/me", headers=world.teacher_a).status_code == 401


def test_a_revoked_token_cannot_open_the_participant_stream_either(world: World) -> None:
    # the WebSocket stream resolves tokens with the same principal_from_token
    from classmood.server.deps import principal_from_token
    from classmood.server.errors import Unauthorized

    state = client_state(world)
    header = bearer(world.client, "a@test.org")
    with state.sessions() as db:
        assert principal_from_token(db, state, token_of(header)).user is not None
    world.client.post("/api/auth/logout", headers=header)
    with state.sessions() as db, pytest.raises(Unauthorized):
        principal_from_token(db, state, token_of(header))


# --- the throttle, shared -------------------------------------------------------------------------------


@pytest.fixture
def two_servers(database_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, TestClient]]:
    """Two app instances (two server processes) on one database, with teacher a@test.org."""
    apps = [create_app(make_settings(database_url, tmp_path / f"data{i}")) for i in range(2)]
    state = apps[0].state.cm
    from classmood.server.accounts.service import create_user

    with state.sessions() as db:
        create_user(db, passwords=state.passwords, email="a@test.org", password=PASSWORD, name="A")
    with TestClient(apps[0]) as one, TestClient(apps[1]) as two:
        yield one, two
    for app in apps:
        app.state.cm.engine.dispose()


def attempt(client: TestClient, email: str, password: str = "wrong password") -> int:
    return int(client.post("/api/auth/token", json={"email": email, "password": password}).status_code)


def test_two_servers_share_the_account_budget(two_servers: tuple[TestClient, TestClient]) -> None:
    one, two = two_servers
    statuses = [attempt(server, "a@test.org") for server in (one, two, one, two, one)]
    assert statuses == [401] * 5  # 5 in all, not 5 each
    for server in (one, two):
        refused = server.post("/api/auth/login", json={"email": "a@test.org", "password": PASSWORD})
        assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 60


def test_two_servers_share_the_address_budget(two_servers: tuple[TestClient, TestClient]) -> None:
    one, two = two_servers
    statuses = [attempt((one, two)[i % 2], f"u{i}@test.org") for i in range(22)]
    assert statuses[:20] == [401] * 20 and statuses[20:] == [429, 429]
    # refused attempts are not counted: the wait stays one step of the address policy (10 s)
    assert int(two.post("/api/auth/token", json={"email": "x@test.org", "password": "x"})
               .headers["retry-after"]) <= 10


def test_parallel_attempts_cannot_overtake_the_count(two_servers: tuple[TestClient, TestClient]) -> None:
    one, two = two_servers
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda i: attempt((one, two)[i % 2], "a@test.org"), range(16)))
    assert statuses.count(401) == 5 and statuses.count(429) == 11


def test_a_success_on_one_server_forgets_the_failures_on_the_other(
        two_servers: tuple[TestClient, TestClient]) -> None:
    one, two = two_servers
    assert [attempt(one, "a@test.org") for _ in range(4)] == [401] * 4
    assert attempt(two, "a@test.org", PASSWORD) == 200
    assert [attempt(one, "a@test.org") for _ in range(5)] == [401] * 5
    assert attempt(two, "a@test.org") == 429


def test_database_buckets_refill_with_time_and_are_pruned(app: Any) -> None:
    now = [1_000_000.0]
    sessions = app.state.cm.sessions
    throttle = LoginThrottle(pair=Policy(burst=3, per_s=0.5), address=Policy(burst=100, per_s=1.0),
                             clock=lambda: now[0], store=DatabaseBuckets(sessions))
    for _ in range(3):
        assert throttle.begin(account="a", address="x") == 0.0
    assert throttle.begin(account="a", address="x") == pytest.approx(2.0)
    assert throttle.begin(account="a", address="y") == 0.0  # an address that has not failed
    now[0] += 1.0
    assert throttle.wait_s(account="a", address="x") == pytest.approx(1.0)
    now[0] += 1.0
    assert throttle.begin(account="a", address="x") == 0.0
    assert throttle.wait_s(account="a", address="x") == pytest.approx(2.0)
    throttle.succeeded(account="a", address="x")
    assert throttle.wait_s(account="a", address="x") == 0.0
    now[0] += 3600.0  # long after: the next take prunes the full buckets first
    throttle.begin(account="b", address="z")
    with sessions() as db:
        keys = set(db.scalars(select(LoginThrottleRow.key)))
        assert keys == {"account:b", "pair:b|z", "address:z"}
        assert db.scalar(select(func.count()).select_from(LoginThrottleRow)) == 3
