"""The login throttle cannot be turned against an account's owner, and forwarded addresses are believed only
from the proxies named in CLASSMOOD_TRUSTED_PROXIES (both databases).

In-process clients stand for peers: ``TestClient(client=(address, port))``; behind a trusted proxy (the peer
``testclient``), ``X-Forwarded-For`` names the client.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from classmood.config import Settings
from classmood.server.accounts.service import create_user
from classmood.server.accounts.throttle import ACCOUNT_POLICY, PAIR_POLICY
from classmood.server.app import create_app

from .conftest import PASSWORD, make_settings

EMAIL = "owner@test.org"


def _app(database_url: str, data_dir: Path, **overrides: Any) -> Any:
    app = create_app(make_settings(database_url, data_dir, **overrides))
    state = app.state.cm
    with state.sessions() as db:
        create_user(db, passwords=state.passwords, email=EMAIL, password=PASSWORD, name="Owner")
    return app


@pytest.fixture
def behind_proxy(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """An app that trusts the test client's peer as its reverse proxy."""
    app = _app(database_url, tmp_path / "data", trusted_proxies="testclient")
    with TestClient(app) as client:
        yield client
    app.state.cm.engine.dispose()


@pytest.fixture
def direct(database_url: str, tmp_path: Path) -> Iterator[Any]:
    """An app with the default setting: no proxy is trusted."""
    app = _app(database_url, tmp_path / "data")
    yield app
    app.state.cm.engine.dispose()


def login(client: TestClient, password: str, address: str | None = None) -> int:
    headers = {"X-Forwarded-For": address} if address else {}
    return client.post("/api/auth/token", json={"email": EMAIL, "password": password}, headers=headers).status_code


def test_failures_from_other_addresses_never_lock_the_owner_out(behind_proxy: TestClient) -> None:
    # the attack: six wrong passwords from six addresses, then one a minute
    assert [login(behind_proxy, "wrong", f"198.51.100.{i}") for i in range(6)] == [401] * 6
    assert login(behind_proxy, PASSWORD, "203.0.113.7") == 200
    # spend the whole account ceiling from many addresses: a failed address is slowed by it...
    spent = [login(behind_proxy, "wrong", f"192.0.2.{i}") for i in range(int(ACCOUNT_POLICY.burst) + 5)]
    assert spent == [401] * len(spent)  # each address's first try is its own
    assert login(behind_proxy, "wrong", "192.0.2.1") == 429
    # ...while the owner, from an address that has not failed, still gets in, and again
    assert login(behind_proxy, PASSWORD, "203.0.113.8") == 200
    assert login(behind_proxy, PASSWORD, "203.0.113.8") == 200


def test_one_address_is_limited_at_one_account(behind_proxy: TestClient) -> None:
    burst = int(PAIR_POLICY.burst)
    assert [login(behind_proxy, "wrong", "198.51.100.1") for _ in range(burst)] == [401] * burst
    refused = behind_proxy.post("/api/auth/token", json={"email": EMAIL, "password": PASSWORD},
                                headers={"X-Forwarded-For": "198.51.100.1"})
    assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 60
    # the same /64 of IPv6 is one address: a host cannot step around the limit by changing its last bits
    assert [login(behind_proxy, "wrong", f"2001:db8:1:2::{i}") for i in range(1, burst + 1)] == [401] * burst
    assert login(behind_proxy, PASSWORD, "2001:db8:1:2::ff") == 429
    assert login(behind_proxy, PASSWORD, "2001:db8:1:3::1") == 200  # another network


def test_forwarded_addresses_are_ignored_unless_the_proxy_is_trusted(direct: Any) -> None:
    with TestClient(direct, client=("10.0.0.2", 40000)) as attacker, \
            TestClient(direct, client=("10.0.0.3", 40000)) as owner:
        # spoofed headers do not make the attempts come from elsewhere: they all count for 10.0.0.2
        assert [login(attacker, "wrong", f"198.51.100.{i}") for i in range(5)] == [401] * 5
        assert login(attacker, PASSWORD, "203.0.113.7") == 429
        assert login(owner, PASSWORD) == 200  # an address that has not failed


def test_only_the_named_proxies_are_trusted(database_url: str, tmp_path: Path) -> None:
    app = _app(database_url, tmp_path / "data", trusted_proxies="10.0.0.1, 192.168.0.0/24")
    try:
        with TestClient(app, client=("10.0.0.9", 40000)) as stranger, \
                TestClient(app, client=("192.168.0.20", 40000)) as proxy:
            assert [login(stranger, "wrong", f"198.51.100.{i}") for i in range(5)] == [401] * 5
            assert login(stranger, PASSWORD, "203.0.113.1") == 429  # its header was not believed
            assert [login(proxy, "wrong", "198.51.100.50") for _ in range(5)] == [401] * 5
            assert login(proxy, PASSWORD, "198.51.100.50") == 429  # believed: that client has failed
            assert login(proxy, PASSWORD, "198.51.100.51") == 200  # and another one has not
    finally:
        app.state.cm.engine.dispose()


def test_trusting_every_peer_is_refused() -> None:
    with pytest.raises(ValidationError, match="trusted_proxies"):
        Settings(secret_key="s" * 32, trusted_proxies="*")
