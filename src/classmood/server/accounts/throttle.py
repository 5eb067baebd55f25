"""Throttling of failed logins, per account and per client address (token buckets of failures).

Each failed attempt takes a token from the bucket of its account (the e-mail tried) and from the bucket
of its address. While either bucket is empty, logins are refused with 429 before any password is
checked, and ``Retry-After`` says when the next attempt is allowed. A success refills the account's
bucket. The account limit stops guessing one teacher's password from many addresses; the address
limit stops one address trying many accounts.

Buckets live in the server process: with ``--workers N`` an attacker gets N times the attempts,
still far from a brute force.

>>> t = LoginThrottle(account=Policy(burst=2, per_s=1.0), address=Policy(burst=10, per_s=1.0),
...                   clock=lambda: 0.0)
>>> for _ in range(2):
...     t.failed(account="a@x.org", address="10.0.0.1")
>>> t.wait_s(account="a@x.org", address="10.0.0.2")
1.0
>>> t.wait_s(account="b@x.org", address="10.0.0.1")
0.0
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MAX_KEYS = 50_000  # above this, full buckets are forgotten (they carry no information)


@dataclass(frozen=True)
class Policy:
    """``burst`` failures at once, then one more every ``1 / per_s`` seconds."""

    burst: float
    per_s: float


ACCOUNT_POLICY = Policy(burst=5, per_s=1 / 60)  # 5 tries, then one a minute
ADDRESS_POLICY = Policy(burst=20, per_s=1 / 10)  # 20 tries, then one every 10 s


class _Buckets:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.state: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def tokens(self, key: str, now: float) -> float:
        tokens, at = self.state.get(key, (self.policy.burst, now))
        return min(self.policy.burst, tokens + (now - at) * self.policy.per_s)

    def wait_s(self, key: str, now: float) -> float:
        missing = 1.0 - self.tokens(key, now)
        return max(0.0, missing / self.policy.per_s)

    def take(self, key: str, now: float) -> None:
        self.state[key] = (max(0.0, self.tokens(key, now) - 1.0), now)
        if len(self.state) > MAX_KEYS:
            self.state = {k: v for k, v in self.state.items() if self.tokens(k, now) < self.policy.burst}

    def reset(self, key: str) -> None:
        self.state.pop(key, None)


class LoginThrottle:
    """Failed-login buckets per account and per address; thread-safe (sync routes run in a thread pool)."""

    def __init__(self, account: Policy = ACCOUNT_POLICY, address: Policy = ADDRESS_POLICY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._accounts, self._addresses = _Buckets(account), _Buckets(address)
        self._clock = clock
        self._lock = threading.Lock()

    def wait_s(self, *, account: str, address: str) -> float:
        """Seconds until this account may be tried from this address (0.0: now)."""
        with self._lock:
            now = self._clock()
            return max(self._accounts.wait_s(account, now), self._addresses.wait_s(address, now))

    def failed(self, *, account: str, address: str) -> None:
        """Record a failed attempt."""
        with self._lock:
            now = self._clock()
            self._accounts.take(account, now)
            self._addresses.take(address, now)

    def succeeded(self, *, account: str) -> None:
        """The right password: the account's failures are forgotten (the address's are not)."""
        with self._lock:
            self._accounts.reset(account)


_CREATE_LOCK = threading.Lock()


def throttle_of(app: Any) -> LoginThrottle:
    """The app's throttle, made on first use and kept on ``app.state`` (one per app, so tests never share)."""
    with _CREATE_LOCK:
        throttle = getattr(app.state, "login_throttle", None)
        if throttle is None:
            throttle = app.state.login_throttle = LoginThrottle()
        return throttle
