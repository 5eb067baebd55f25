"""Load benchmark of on-device analysis: N simulated students send score batches, dashboards listen.

``classmood bench load --mode device``: each student is what the student page becomes in on-device mode,
one score (seven probabilities) every ``interval_s`` sent at once through the idempotent observations API
(``POST /api/sessions/{id}/observations``) on a kept-alive HTTP/1.1 connection, re-sending what was not
acknowledged. The servers run in child processes on PostgreSQL (a fresh schema, dropped afterwards); with
``servers > 1`` they share PostgreSQL and Redis, students are spread over them and each dashboard listens on
another process than most students, so live events cross processes through Redis.

The simulated students use a minimal HTTP client written on asyncio streams: a general-purpose client costs
more CPU per request than the server, and on a small machine the load generator must not be the bottleneck.
It reports students, observations/s, lost (acknowledged but not stored), duplicated (stored twice) and the
score → dashboard delay (median, p95), plus the score → acknowledgement delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from classmood.benchmarks.load import _SERVER_CODE, _wait_until_up, delay_summary, free_port, pct, sse_events
from classmood.labels import LABELS

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
SUSTAINED_P95_S = 1.0  # the goal: score to dashboard within a second for 95 % of scores


@dataclass
class DeviceLoadResult:
    """Figures of one on-device load run; delays in seconds."""

    students: int
    seconds: float
    interval_s: float
    servers: int
    dashboards: int
    requests: int = 0
    scores_sent: int = 0
    acknowledged: int = 0
    duplicates_acked: int = 0
    retried: int = 0
    errors: int = 0
    unacked: int = 0
    stored: int = 0
    lost: int = 0
    duplicated: int = 0
    dashboard_events: int = 0
    dashboard_delays: list[float] = field(default_factory=list, repr=False)
    ack_delays: list[float] = field(default_factory=list, repr=False)
    wall_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        """The figures without the raw delay lists, plus medians and 95th percentiles."""
        out = delay_summary(self)
        out["observations_per_s"] = self.stored / self.seconds if self.seconds else 0.0
        out["sustained"] = self.sustained()
        return out

    def sustained(self) -> bool:
        """Every score stored once and acknowledged, 95 % on the dashboards within a second."""
        p95 = pct(self.dashboard_delays, 95)
        return (self.lost == 0 and self.duplicated == 0 and self.unacked == 0 and p95 is not None
                and p95 <= SUSTAINED_P95_S)


# -- servers ----------------------------------------------------------------------------------------

@contextlib.contextmanager
def pg_schema(url: str) -> Iterator[str]:
    """A fresh PostgreSQL schema for the run (dropped afterwards); yields the URL that uses it."""
    import psycopg

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    schema = f"cm_load_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(plain, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        sep = "&" if "?" in url else "?"
        yield f"{url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@contextlib.contextmanager
def servers(count: int, database_url: str, redis_url: str, email: str, password: str) -> Iterator[list[str]]:
    """``count`` ClassMood processes sharing one database (and Redis when more than one); yields their URLs."""
    with tempfile.TemporaryDirectory(prefix="cm-load-device-") as tmp:
        env = dict(os.environ, CLASSMOOD_DATA_DIR=tmp, CLASSMOOD_DEV="1", CLASSMOOD_ADMIN_EMAIL=email,
                   CLASSMOOD_ADMIN_PASSWORD=password, CLASSMOOD_DATABASE_URL=database_url,
                   CLASSMOOD_SECRET_KEY=secrets.token_urlsafe(32), CLASSMOOD_MAX_FPS="5",
                   CLASSMOOD_ANALYSIS_MODE="device", CLASSMOOD_REDIS_URL=redis_url if count > 1 else "")
        procs: list[subprocess.Popen[bytes]] = []
        urls: list[str] = []
        try:
            for _ in range(count):  # one after the other: the first migrates the database
                port = free_port()
                proc = subprocess.Popen([sys.executable, "-c", _SERVER_CODE, str(port)], env=env)
                procs.append(proc)
                urls.append(f"http://127.0.0.1:{port}")
                _wait_until_up(urls[-1], proc)
            yield urls
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()


# -- a minimal keep-alive HTTP/1.1 client -----------------------------------------------------------

class _Connection:
    """One kept-alive connection; ``post`` sends a JSON body and returns (status, parsed JSON)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, headers: str) -> tuple[int, Any]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{headers}"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
        self.writer.write(head.encode("ascii") + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection")
        status = int(status_line.split()[1])
        length, close = 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "connection" and value.strip().lower() == "close":
                close = True
        payload = await self.reader.readexactly(length) if length else b""
        if close:
            self.close()
        return status, json.loads(payload) if payload else None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


# -- students and dashboards ------------------------------------------------------------------------

@dataclass
class _Shared:
    sent_at: dict[str, float] = field(default_factory=dict)  # score id -> send time (= its ts)
    acked: set[str] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)


def _score(rng: Any, now: float) -> dict[str, Any]:
    raw = [rng.random() + (2.0 if k == 4 else 0.0) for k in range(len(LABELS))]  # mostly Neutral, as in class
    total = sum(raw)
    return {"id": str(uuid.uuid4()), "ts": now, "score": 0.9,
            "probs": {label: v / total for label, v in zip(LABELS, raw, strict=True)}}


async def _student(url: str, session_id: int, token: str, index: int, *, stop_at: float, drain_s: float,
                   interval_s: float, shared: _Shared, result: DeviceLoadResult) -> None:
    import random

    rng = random.Random(index)
    conn = _Connection(url)
    headers = f"Authorization: Bearer {token}\r\nAccept: application/json\r\n"
    path = f"/api/sessions/{session_id}/observations"
    pending: list[dict[str, Any]] = []  # not yet acknowledged, oldest first (re-sent: the API is idempotent)
    await asyncio.sleep(interval_s * (index % 97) / 97)  # spread over one interval, as pages start at random
    next_at = time.time()
    while True:
        now = time.time()
        producing = now < stop_at
        if producing:
            item = _score(rng, now)
            shared.sent_at[item["id"]] = now
            pending.append(item)
            result.scores_sent += 1
        elif not pending or now > stop_at + drain_s:
            break
        batch = pending[:100]
        try:
            result.requests += 1
            status, reply = await conn.post(path, json.dumps({"observations": batch}).encode(), headers)
        except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError):
            conn.close()
            status, reply = 0, None
        if status == 200 and isinstance(reply, dict):
            done = time.time()
            for item in batch:
                shared.acked.add(item["id"])
                result.ack_delays.append(done - item["ts"])
            result.acknowledged += len(batch)
            result.duplicates_acked += int(reply.get("duplicates", 0))
            del pending[: len(batch)]
        elif status in (0, 429) or status >= 500:
            result.retried += 1  # kept, sent again with the next score
        else:
            result.errors += len(batch)
            del pending[: len(batch)]
        next_at += interval_s
        await asyncio.sleep(max(0.0, next_at - time.time()) if producing else 0.5)
    result.unacked += len(pending)
    conn.close()


async def _dashboard(client: httpx.AsyncClient, session_id: int, auth: dict[str, str], shared: _Shared,
                     result: DeviceLoadResult) -> None:
    while True:
        try:
            async for event, data in sse_events(client, f"/api/sessions/{session_id}/live", auth):
                if event != "observation":
                    continue
                now = time.time()
                result.dashboard_events += 1
                cid = json.loads(data).get("client_id")
                sent = shared.sent_at.get(cid)
                if sent is not None and cid not in shared.seen:
                    shared.seen.add(cid)
                    result.dashboard_delays.append(now - sent)
        except httpx.HTTPError:
            await asyncio.sleep(1.0)


async def _join_all(client: httpx.AsyncClient, code: str, students: int) -> list[str]:
    gate = asyncio.Semaphore(20)

    async def one(i: int) -> str:
        async with gate:
            r = await client.post("/api/join", json={"code": code, "display_name": f"Student {i}", "consent": True})
            r.raise_for_status()
            return str(r.json()["token"])

    return list(await asyncio.gather(*(one(i) for i in range(students))))


async def _run(urls: list[str], email: str, password: str, students: int, seconds: float, interval_s: float,
               drain_s: float, dashboards: int) -> DeviceLoadResult:
    from classmood.benchmarks.load import create_session

    result = DeviceLoadResult(students=students, seconds=seconds, interval_s=interval_s, servers=len(urls),
                              dashboards=dashboards)
    shared = _Shared()
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(httpx.AsyncClient(base_url=u, timeout=120)) for u in urls]
        setup = await create_session(clients[0], email, password)
        r = await clients[0].patch(f"/api/sessions/{setup.session_id}", headers=setup.auth,
                                   json={"analysis_mode": "device", "frame_interval_s": interval_s})
        r.raise_for_status()
        tokens = await _join_all(clients[0], setup.code, students)
        # Dashboards listen on the last servers, students start on the first: events cross processes.
        listeners = [asyncio.create_task(_dashboard(clients[-1 - k % len(clients)], setup.session_id, setup.auth,
                                                    shared, result)) for k in range(dashboards)]
        await asyncio.sleep(1.0)  # let the subscriptions settle
        start = time.time()
        await asyncio.gather(*(_student(urls[i % len(urls)], setup.session_id, token, i, stop_at=start + seconds,
                                        drain_s=drain_s, interval_s=interval_s, shared=shared, result=result)
                               for i, token in enumerate(tokens)))
        result.wall_s = time.time() - start
        await asyncio.sleep(2.0)  # the last events are on their way
        for task in listeners:
            task.cancel()
        r = await clients[-1].get(f"/api/sessions/{setup.session_id}/export.csv", headers=setup.auth)
        r.raise_for_status()
        ids = [row["client_id"] for row in csv.DictReader(io.StringIO(r.text))]
        result.stored = len(ids)
        result.duplicated = len(ids) - len(set(ids))
        result.lost = len(shared.acked - set(ids))
        (await clients[0].post(f"/api/sessions/{setup.session_id}/end", headers=setup.auth)).raise_for_status()
    return result


def run_device_load(students: int, seconds: float, *, interval_s: float = 1.0, drain_s: float = 30.0,
                    servers_count: int = 1, dashboards: int = 1, database_url: str = DEFAULT_POSTGRES,
                    redis_url: str = DEFAULT_REDIS) -> DeviceLoadResult:
    """Run the on-device load benchmark on fresh local servers over PostgreSQL (and Redis for several)."""
    if students < 1 or seconds <= 0 or interval_s <= 0 or servers_count < 1 or dashboards < 1:
        raise ValueError("students, servers and dashboards must be >= 1, seconds and interval_s > 0")
    if not database_url.startswith("postgresql"):
        raise ValueError("the on-device load benchmark runs on PostgreSQL (--database-url postgresql+psycopg://…)")
    email, password = "load-admin@example.org", secrets.token_urlsafe(16)
    with pg_schema(database_url) as url, servers(servers_count, url, redis_url, email, password) as urls:
        return asyncio.run(_run(urls, email, password, students, seconds, interval_s, drain_s, dashboards))


def format_device_load(result: DeviceLoadResult) -> str:
    """A short human-readable report of one run."""
    s = result.summary()

    def ms(v: float | None) -> str:
        return "–" if v is None else f"{1000 * v:.0f} ms"

    verdict = "sustained" if result.sustained() else "NOT sustained"
    return "\n".join([
        f"on-device students {s['students']} · {s['seconds']:.0f} s · a score every {s['interval_s']:g} s each · "
        f"{s['servers']} server process(es) on PostgreSQL · {s['dashboards']} dashboard(s): {verdict}",
        f"scores sent {s['scores_sent']} in {s['requests']} requests · acknowledged {s['acknowledged']} · "
        f"stored {s['stored']} ({s['observations_per_s']:.0f} observations/s) · lost {s['lost']} · "
        f"duplicated {s['duplicated']} · unacknowledged {s['unacked']} · retried {s['retried']} · "
        f"refused {s['errors']}",
        f"score → ack: median {ms(s['ack_delay_median_s'])}, p95 {ms(s['ack_delay_p95_s'])}",
        f"score → dashboard: median {ms(s['dashboard_delay_median_s'])}, p95 {ms(s['dashboard_delay_p95_s'])} "
        f"({s['dashboard_events']} events)",
    ])
