"""Settings factory and the security primitives (signed tokens, passwords, CSRF)."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest

from classmood.config import Settings, load_settings
from classmood.server.accounts.throttle import LoginThrottle, Policy
from classmood.server.security import LoginCookie, Passwords, Signer, csrf_ok, new_login, read_login


def test_settings_read_env_prefix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CLASSMOOD_MIN_FACES", "9")
    monkeypatch.setenv("CLASSMOOD_AGGREGATE_ONLY", "true")
    settings = load_settings(data_dir=tmp_path)
    assert settings.min_faces == 9 and settings.aggregate_only is True
    assert settings.database_url == f"sqlite:///{tmp_path.absolute() / 'classmood.db'}"
    assert settings.store_frames is False and settings.max_frame_bytes == 2 * 1024 * 1024


def test_secret_key_generated_once_and_private(tmp_path: Path) -> None:
    first = load_settings(data_dir=tmp_path).secret_key
    second = load_settings(data_dir=tmp_path).secret_key
    assert first == second and len(first) >= 32
    assert stat.S_IMODE((tmp_path / "secret_key").stat().st_mode) == 0o600


def test_explicit_secret_is_kept(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path, secret_key="k" * 40).resolved().secret_key == "k" * 40
    assert not (tmp_path / "secret_key").exists()


def test_signer_rejects_tampering_other_purpose_and_expiry() -> None:
    signer = Signer("s" * 40)
    token = signer.sign("participant", {"pid": 1, "sid": 2}, ttl_s=60)
    assert signer.verify("participant", token) == {"pid": 1, "sid": 2, "exp": pytest.approx(time.time() + 60, abs=2)}
    assert signer.verify("api", token) is None
    assert Signer("other" * 10).verify("participant", token) is None
    body, mac = token.split(".")
    assert signer.verify("participant", body[:-2] + "xx." + mac) is None
    assert signer.verify("participant", signer.sign("participant", {"pid": 1}, ttl_s=-1)) is None
    assert signer.verify("participant", "garbage") is None


def test_login_cookie_carries_csrf() -> None:
    signer = Signer("s" * 40)
    cookie, csrf = new_login(signer, 5, ttl_s=60)
    login = read_login(signer, cookie)
    assert login == LoginCookie(5, csrf)
    assert csrf_ok(login, csrf) and not csrf_ok(login, None) and not csrf_ok(login, csrf + "x")


def test_passwords_hash_and_verify() -> None:
    passwords = Passwords(time_cost=1, memory_kib=1024)
    hashed = passwords.hash("s3cret pass")
    assert hashed.startswith("$argon2id$") and "s3cret" not in hashed
    assert passwords.verify(hashed, "s3cret pass")
    assert not passwords.verify(hashed, "wrong")
    assert not passwords.verify("not a hash", "wrong")


def test_login_throttle_refills_with_time() -> None:
    now = [0.0]
    throttle = LoginThrottle(pair=Policy(burst=3, per_s=0.5), address=Policy(burst=100, per_s=1.0),
                             clock=lambda: now[0])
    for _ in range(3):
        assert throttle.wait_s(account="a", address="x") == 0.0
        throttle.failed(account="a", address="x")
    assert throttle.wait_s(account="a", address="x") == pytest.approx(2.0)
    now[0] = 1.0
    assert throttle.wait_s(account="a", address="x") == pytest.approx(1.0)
    assert throttle.wait_s(account="a", address="y") == 0.0  # another address has not failed
    now[0] = 2.0
    assert throttle.wait_s(account="a", address="x") == 0.0
    throttle.failed(account="a", address="x")
    assert throttle.wait_s(account="a", address="x") == pytest.approx(2.0)
    throttle.succeeded(account="a", address="x")
    assert throttle.wait_s(account="a", address="x") == 0.0


def test_login_cookie_is_refused_once_its_login_ended() -> None:
    active = {"L1"}

    class Registry:
        def is_active(self, login_id: str) -> bool:
            return login_id in active

    signer = Signer("s" * 40, logins=Registry())
    cookie, _ = new_login(signer, 5, ttl_s=60, login_id="L1")
    assert read_login(signer, cookie) is not None
    active.clear()
    assert read_login(signer, cookie) is None
    assert read_login(signer, new_login(signer, 5, ttl_s=60)[0]) is None  # a cookie without a login id
