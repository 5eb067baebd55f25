"""Throttling of failed logins that an attacker cannot turn against an account's owner, shared by every server
process.

The rule (defined here once). Three kinds of bucket hold ``burst`` attempts each and refill at ``per_s``:

- the **pair** (an account, the e-mail tried, from one address): 5 tries, then one a minute. This is the
  limit that a guesser meets first;
- the **account ceiling**: 20 tries, then one every 30 s, over every address *that has failed for this
  account* (its pair bucket is not full). It slows a guesser who spreads over many addresses, yet an address
  that has not failed (a full pair bucket: no failure in the last minute per failure) is never held back by
  it, so failures from elsewhere cannot lock the owner out: a successful login from an address that has not
  failed always goes through. The price: a guesser with many addresses gets one try per address and minute
  once the ceiling is spent;
- the **address**: 20 tries, then one every 10 s, over every account tried from one address (one address
  trying many accounts).

A login attempt first *reserves* one attempt from each bucket that applies, atomically, before the password
is checked; while one of them is empty the attempt is refused with 429 and ``Retry-After`` says when the next
one is allowed. A wrong password keeps the reservation (it is the failure); the right password forgets the
pair's failures and gives the address its attempt back (the account ceiling keeps what others spent).
Reserving first means parallel attempts cannot all slip past the check before any failure is recorded.
Addresses are compared as the server sees them (``X-Forwarded-For`` only from the trusted proxies of
``CLASSMOOD_TRUSTED_PROXIES``), IPv6 ones by their /64 network, which one host usually holds whole.

Buckets are kept as GCRA "due" times (the time at which the bucket will be full again): taking an attempt
moves ``due`` forward by ``1 / per_s``, and is allowed while ``max(due, now) + 1 / per_s`` stays within
``burst / per_s`` of now. That is one number per key, updated by one conditional upsert, so the running
server keeps them in the database (:class:`DatabaseBuckets`, table ``login_throttle``): every server
process behind a load balancer, on PostgreSQL or on the embedded SQLite file, draws from the same budget.
Times are wall-clock epoch seconds, so the processes' clocks must agree (NTP) to within a few seconds.
Redis is not used even when configured: the database is always shared, failed logins are rare, and one
store means one behaviour. :class:`MemoryBuckets` is the same rule in one process (unit tests).

>>> t = LoginThrottle(pair=Policy(burst=2, per_s=1.0), account=Policy(burst=3, per_s=1.0),
...                   address=Policy(burst=10, per_s=1.0), clock=lambda: 0.0)
>>> for _ in range(2):
...     t.failed(account="a@x.org", address="10.0.0.1")
>>> t.wait_s(account="a@x.org", address="10.0.0.1")  # this address has used its tries at this account
1.0
>>> t.wait_s(account="a@x.org", address="10.0.0.2")  # another address has not failed: not held back
0.0
>>> t.begin(account="a@x.org", address="10.0.0.1")  # refused: wait 1 s
1.0
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Double, bindparam, case, delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from classmood.server.accounts.models import LoginThrottleRow

EPSILON_S = 1e-6  # float slack in the "fits in the bucket" comparison
PRUNE_EVERY_S = 60.0  # full buckets (due in the past) are deleted at most this often per process
MAX_MEMORY_KEYS = 50_000  # the in-memory store forgets full buckets above this


@dataclass(frozen=True)
class Policy:
    """``burst`` failures at once, then one more every ``1 / per_s`` seconds (``burst`` >= 1)."""

    burst: float
    per_s: float

    @property
    def step_s(self) -> float:
        """How far one attempt moves the bucket's due time."""
        return 1.0 / self.per_s

    @property
    def cap_s(self) -> float:
        """How far ahead of now the due time may be: a full bucket's worth."""
        return self.burst / self.per_s

    def wait_s(self, due: float | None, now: float) -> float:
        """Seconds until one more attempt fits (0.0: now)."""
        if due is None:
            return 0.0
        return max(0.0, due + self.step_s - self.cap_s - now)


PAIR_POLICY = Policy(burst=5, per_s=1 / 60)  # one account from one address: 5 tries, then one a minute
ACCOUNT_POLICY = Policy(burst=20, per_s=1 / 30)  # one account from every address that failed: 20, then 1 / 30 s
ADDRESS_POLICY = Policy(burst=20, per_s=1 / 10)  # one address, every account: 20 tries, then one every 10 s


def address_key(address: str) -> str:
    """The address as the throttle counts it: IPv4 as is, IPv6 by its /64 network, anything else as given.

    >>> address_key("2001:db8:1:2:aaaa::1"), address_key("10.0.0.1"), address_key("testclient")
    ('2001:db8:1:2::/64', '10.0.0.1', 'testclient')
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:60]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass(frozen=True)
class Take:
    """One attempt taken from the bucket ``key`` of ``policy``."""

    key: str
    policy: Policy


class BucketStore(Protocol):
    """Where the due times live; ``take`` is atomic across everyone sharing the store."""

    def due(self, keys: Sequence[str]) -> dict[str, float]:
        """The due time of each key that has a bucket (a missing key is a full bucket)."""
        ...

    def take(self, takes: Sequence[Take], now: float) -> bool:
        """Take one attempt from every bucket, or from none when any of them is empty; True when taken."""
        ...

    def give_back(self, take: Take) -> None:
        """Return one attempt to a bucket (a success that was reserved as an attempt)."""
        ...

    def forget(self, key: str) -> None:
        """Refill a bucket completely."""
        ...


def _fits(due: float | None, take: Take, now: float) -> float | None:
    """The bucket's new due time after taking one attempt, or ``None`` when it is empty."""
    new_due = max(due if due is not None else now, now) + take.policy.step_s
    return new_due if new_due <= now + take.policy.cap_s + EPSILON_S else None


class MemoryBuckets:
    """The buckets of one process (tests and single-process tools)."""

    def __init__(self) -> None:
        self._due: dict[str, float] = {}
        self._lock = threading.Lock()

    def due(self, keys: Sequence[str]) -> dict[str, float]:
        with self._lock:
            return {key: self._due[key] for key in keys if key in self._due}

    def take(self, takes: Sequence[Take], now: float) -> bool:
        with self._lock:
            updates = {t.key: _fits(self._due.get(t.key), t, now) for t in takes}
            if any(value is None for value in updates.values()):
                return False
            self._due.update({key: value for key, value in updates.items() if value is not None})
            if len(self._due) > MAX_MEMORY_KEYS:
                self._due = {key: value for key, value in self._due.items() if value > now}
            return True

    def give_back(self, take: Take) -> None:
        with self._lock:
            if take.key in self._due:
                self._due[take.key] -= take.policy.step_s

    def forget(self, key: str) -> None:
        with self._lock:
            self._due.pop(key, None)


class DatabaseBuckets:
    """The buckets in the ``login_throttle`` table, shared by every process on the database.

    ``take`` is one transaction of conditional upserts (``INSERT … ON CONFLICT DO UPDATE … WHERE``, on
    SQLite and PostgreSQL), always account before address so that concurrent logins lock rows in the same
    order; a refused bucket rolls the whole transaction back.
    """

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._pruned = 0.0

    def due(self, keys: Sequence[str]) -> dict[str, float]:
        with self._sessions() as db:
            rows = db.execute(select(LoginThrottleRow.key, LoginThrottleRow.due)
                              .where(LoginThrottleRow.key.in_(list(keys))))
            return {key: due for key, due in rows}

    def take(self, takes: Sequence[Take], now: float) -> bool:
        self._prune(now)
        with self._sessions() as db:
            for one in takes:
                if db.execute(_take_statement(db, one, now)).first() is None:
                    db.rollback()
                    return False
            db.commit()
            return True

    def give_back(self, take: Take) -> None:
        with self._sessions() as db:
            db.execute(update(LoginThrottleRow).where(LoginThrottleRow.key == take.key)
                       .values(due=LoginThrottleRow.due - take.policy.step_s))
            db.commit()

    def forget(self, key: str) -> None:
        with self._sessions() as db:
            db.execute(delete(LoginThrottleRow).where(LoginThrottleRow.key == key))
            db.commit()

    def _prune(self, now: float) -> None:
        # Its own short transaction, not inside take's: deleting other keys' rows there could deadlock
        # with a concurrent take on PostgreSQL.
        if now - self._pruned < PRUNE_EVERY_S:
            return
        self._pruned = now
        with self._sessions() as db:
            db.execute(delete(LoginThrottleRow).where(LoginThrottleRow.due < now))
            db.commit()


def _take_statement(db: Session, take: Take, now: float) -> Any:
    """``INSERT (key, now + step) ON CONFLICT UPDATE due = max(due, now) + step WHERE that fits``, RETURNING.

    No row comes back when the bucket is empty (the WHERE refused the update).
    """
    from sqlalchemy.dialects import postgresql, sqlite

    insert = postgresql.insert if db.get_bind().dialect.name == "postgresql" else sqlite.insert
    table = LoginThrottleRow.__table__.c
    at: Any = bindparam("now", now, type_=Double())
    new_due = case((table.due > at, table.due), else_=at) + take.policy.step_s
    statement = insert(LoginThrottleRow).values(key=take.key, due=now + take.policy.step_s)
    return statement.on_conflict_do_update(
        index_elements=[table.key], set_={"due": new_due},
        where=new_due <= now + take.policy.cap_s + EPSILON_S).returning(table.due)


class LoginThrottle:
    """Failed-login buckets per (account, address), per account and per address (thread-safe; shared when the
    store is)."""

    def __init__(self, pair: Policy = PAIR_POLICY, account: Policy = ACCOUNT_POLICY,
                 address: Policy = ADDRESS_POLICY, clock: Callable[[], float] = time.time,
                 store: BucketStore | None = None) -> None:
        self.pair, self.account, self.address = pair, account, address
        self._clock = clock
        self._store: BucketStore = store if store is not None else MemoryBuckets()

    def _takes(self, account: str, address: str) -> tuple[Take, Take, Take]:
        """(account ceiling, pair, address): the lock order of DatabaseBuckets.take."""
        where = address_key(address)
        return (Take(f"account:{account}", self.account), Take(f"pair:{account}|{where}", self.pair),
                Take(f"address:{where}", self.address))

    def _applying(self, account: str, address: str, now: float) -> tuple[list[Take], Take]:
        """The buckets this attempt must fit in, and the account ceiling's take. The ceiling applies only when
        this address has failed for this account (its pair bucket is not full)."""
        ceiling, pair, where = self._takes(account, address)
        failed_here = self._store.due([pair.key]).get(pair.key, now) > now
        return ([ceiling, pair, where] if failed_here else [pair, where]), ceiling

    def wait_s(self, *, account: str, address: str) -> float:
        """Seconds until this account may be tried from this address (0.0: now)."""
        now = self._clock()
        takes, _ = self._applying(account, address, now)
        due = self._store.due([t.key for t in takes])
        return max(t.policy.wait_s(due.get(t.key), now) for t in takes)

    def begin(self, *, account: str, address: str) -> float:
        """Reserve one attempt from the buckets that apply: 0.0 when reserved, else the seconds to wait (> 0).

        An address that has not failed for the account passes whatever the ceiling says; its attempt still
        counts towards the ceiling when there is room (a failure then slows the other failing addresses).
        """
        now = self._clock()
        takes, ceiling = self._applying(account, address, now)
        if not self._store.take(takes, now):
            # The store refused, so a bucket was empty a moment ago; never answer "wait 0 s" to a refusal.
            return max(self.wait_s(account=account, address=address), EPSILON_S)
        if ceiling not in takes:
            self._store.take([ceiling], now)
        return 0.0

    def failed(self, *, account: str, address: str) -> None:
        """Record a failed attempt that was not reserved with :meth:`begin` (no-op on an empty bucket)."""
        now = self._clock()
        for one in self._takes(account, address):
            self._store.take([one], now)

    def succeeded(self, *, account: str, address: str) -> None:
        """The right password: this address's failures at the account are forgotten and its reserved address
        attempt is returned. The ceiling keeps what other addresses spent, so a login of the owner does not
        give a distributed guesser a fresh budget."""
        _, pair, where = self._takes(account, address)
        self._store.forget(pair.key)
        self._store.give_back(where)


_CREATE_LOCK = threading.Lock()


def throttle_of(app: Any) -> LoginThrottle:
    """The app's throttle (on its database), made on first use and kept on ``app.state``."""
    with _CREATE_LOCK:
        throttle = getattr(app.state, "login_throttle", None)
        if throttle is None:
            throttle = app.state.login_throttle = LoginThrottle(store=DatabaseBuckets(app.state.cm.sessions))
        return throttle
