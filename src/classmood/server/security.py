"""Passwords (argon2id), signed tokens and cookies, and CSRF tokens.

Tokens are ``base64url(json payload) . base64url(HMAC-SHA256)``, keyed by the secret key and a
*purpose*, so a participant token can never pass for a login cookie or an API token. API and
participant tokens are stateless; a browser login is also recorded server-side (a
:class:`LoginRegistry`), so that logging out ends it for good, even if someone kept the cookie.

>>> signer = Signer("k" * 32)
>>> token = signer.sign("api", {"uid": 7}, ttl_s=60)
>>> signer.verify("api", token)["uid"]
7
>>> signer.verify("participant", token) is None
True
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

Purpose = Literal["session", "api", "participant"]
SESSION_COOKIE = "cm_session"
CSRF_COOKIE = "cm_csrf"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Passwords:
    """argon2id hashing with configurable cost (tests lower it; production keeps the defaults)."""

    def __init__(self, time_cost: int = 3, memory_kib: int = 65536) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)

    def hash(self, password: str) -> str:
        """Return an argon2id hash of ``password``."""
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        """True when ``password`` matches ``password_hash``; never raises for a wrong password."""
        try:
            return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def dummy_verify(self) -> None:
        """Spend the time of one verification, so that unknown e-mails are not faster to reject."""
        self.verify(self._dummy, "not the password")

    @property
    def _dummy(self) -> str:
        if not hasattr(self, "_dummy_hash"):
            self._dummy_hash = self._hasher.hash(secrets.token_hex(8))
        return self._dummy_hash


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def same_text(a: str, b: str) -> bool:
    """Constant-time comparison of two strings, any characters.

    ``hmac.compare_digest`` raises TypeError for non-ASCII strings, and headers and cookies arrive as
    whatever bytes the client sent: compare their UTF-8 bytes instead.

    >>> same_text("abc", "abc"), same_text("\xe9", "e")
    (True, False)
    """
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass"))


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class LoginRegistry(Protocol):
    """Where browser logins are recorded; a login cookie is honoured only while its login is active."""

    def is_active(self, login_id: str) -> bool:
        """True while the login exists, has not expired and was not ended by logging out."""
        ...


class Signer:
    """Signs and verifies small JSON payloads with an expiry.

    ``logins``, when given, is asked about every login cookie (see :func:`read_login`).
    """

    def __init__(self, secret_key: str, logins: LoginRegistry | None = None) -> None:
        self._key = secret_key.encode()
        self.logins = logins

    def _mac(self, purpose: str, body: str) -> str:
        return _b64(hmac.new(self._key, f"{purpose}.{body}".encode("utf-8", "surrogatepass"), hashlib.sha256).digest())

    def sign(self, purpose: Purpose, payload: dict[str, Any], ttl_s: int) -> str:
        """A token carrying ``payload`` for ``ttl_s`` seconds."""
        body = _b64(json.dumps({**payload, "exp": int(time.time()) + ttl_s}, separators=(",", ":")).encode())
        return f"{body}.{self._mac(purpose, body)}"

    def verify(self, purpose: Purpose, token: str | None) -> dict[str, Any] | None:
        """The payload of a valid, unexpired token of this purpose; ``None`` otherwise."""
        if not token or token.count(".") != 1:
            return None
        body, mac = token.split(".")
        if not same_text(mac, self._mac(purpose, body)):
            return None
        try:
            payload = json.loads(_unb64(body))
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(payload, dict) or payload.get("exp", 0) < time.time():
            return None
        return payload


@dataclass(frozen=True)
class LoginCookie:
    """What a browser login carries: the user and the CSRF token bound to this login."""

    user_id: int
    csrf: str
    login_id: str = ""


def new_login(signer: Signer, user_id: int, ttl_s: int, login_id: str = "") -> tuple[str, str]:
    """Return (session cookie value, CSRF token) for a fresh browser login (``login_id``: its registry key).

    The CSRF token is stored inside the signed cookie as well as in the readable ``cm_csrf``
    cookie, so a request must present the same value in the ``X-CSRF-Token`` header (signed
    double submit: a sibling site cannot set a matching pair).
    """
    csrf = secrets.token_urlsafe(24)
    return signer.sign("session", {"uid": user_id, "csrf": csrf, "sid": login_id}, ttl_s), csrf


def new_login_id() -> str:
    """A random, unguessable key of one browser login.

    >>> len(new_login_id())
    32
    """
    return secrets.token_hex(16)


def read_login(signer: Signer, cookie: str | None) -> LoginCookie | None:
    """Decode a session cookie; ``None`` if absent, forged, expired or logged out."""
    payload = signer.verify("session", cookie)
    if payload is None or not isinstance(payload.get("uid"), int):
        return None
    login_id = str(payload.get("sid", ""))
    if signer.logins is not None and not signer.logins.is_active(login_id):
        return None
    return LoginCookie(user_id=payload["uid"], csrf=str(payload.get("csrf", "")), login_id=login_id)


def csrf_ok(login: LoginCookie, header: str | None) -> bool:
    """True when the header repeats the CSRF token bound to the login."""
    return bool(header) and same_text(login.csrf, header or "")


def generate_password(length: int = 16) -> str:
    """A random password for printed first-start credentials.

    >>> len(generate_password())
    16
    """
    alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))
