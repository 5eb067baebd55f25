"""Load benchmark of on-device analysis: N simulated students send score batches, dashboards listen.

``classmood bench load --mode device``: each student is what the student page becomes in on-device mode,
one score (seven probabilities) every ``interval_s``, kept until acknowledged and re-sent after a reconnect.

- ``transport="ws"`` (the default, what the page does while its stream is open): one WebSocket per student,
  ``{"type": "scores", "batch", "observations"}`` messages on ``/api/sessions/{id}/stream``, each answered
  by a ``scores_ack`` after the server's COMMIT;
- ``transport="http"``: ``POST /api/sessions/{id}/observations`` on a kept-alive HTTP/1.1 connection (the
  page's fallback), for comparison.

The servers run in child processes on PostgreSQL (a fresh schema, dropped afterwards); with ``servers > 1``
they share PostgreSQL and Redis, students are spread over them and each dashboard listens on another process
than most students, so live events cross processes through Redis.

The simulated students run in ``generators`` child processes, with minimal clients written on asyncio
streams (general-purpose clients cost more CPU per message than the server does): on a small machine the
load generator must not be the bottleneck, so its CPU use is reported next to the servers'. The report has
students, observations/s, lost (acknowledged but not stored), duplicated (stored twice), score → ack and
score → dashboard delays (median, p95), and the machine's load average.
"""

from __future__ import annotations

import asyncio
import base64
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
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, fields
from multiprocessing import get_context
from typing import Any
from urllib.parse import urlsplit

import httpx

from classmood.benchmarks.load import _wait_until_up, delay_summary, free_port, pct, sse_events
from classmood.labels import LABELS

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
SUSTAINED_P95_S = 1.0  # the goal: score to dashboard within a second for 95 % of scores
TRANSPORTS = ("ws", "http")
BATCH = 100  # scores per message or request at most, as on the student page


@dataclass(kw_only=True)
class _Counters:
    """What the students counted: each generator process keeps its own, the run adds them up."""

    requests: int = 0
    scores_sent: int = 0
    acknowledged: int = 0
    duplicates_acked: int = 0
    retried: int = 0
    reconnects: int = 0
    errors: int = 0
    unacked: int = 0


@dataclass
class DeviceLoadResult(_Counters):
    """Figures of one on-device load run; delays in seconds, CPU in percent of one core."""

    students: int
    seconds: float
    interval_s: float
    servers: int
    dashboards: int
    transport: str = "ws"
    generators: int = 1
    stored: int = 0
    lost: int = 0
    duplicated: int = 0
    dashboard_events: int = 0
    dashboard_delays: list[float] = field(default_factory=list, repr=False)
    ack_delays: list[float] = field(default_factory=list, repr=False)
    wall_s: float = 0.0
    server_cpu_pct: list[float] = field(default_factory=list)
    generator_cpu_pct: list[float] = field(default_factory=list)
    dashboard_cpu_pct: float = 0.0  # the process whose SSE clients stand for the dashboards
    postgres_cpu_pct: float = 0.0  # every PostgreSQL process of the machine (other users' queries too)
    machine_busy_pct: float = 0.0  # all cores, 100 = every core busy for the whole run
    load_before: tuple[float, float, float] = (0.0, 0.0, 0.0)
    load_after: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def summary(self) -> dict[str, Any]:
        """The figures without the raw delay lists, plus medians and 95th percentiles."""
        out = delay_summary(self)
        out["observations_per_s"] = self.stored / self.seconds if self.seconds else 0.0
        out["sustained"] = self.sustained()
        return out

    def sustained(self) -> bool:
        """Every score stored once and acknowledged, 95 % on the dashboards within a second."""
        p95 = pct(self.dashboard_delays, 95)
        return (self.lost == 0 and self.duplicated == 0 and self.unacked == 0 and self.errors == 0
                and p95 is not None and p95 <= SUSTAINED_P95_S)


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


# uvicorn as ``classmood serve`` runs it (uvloop and httptools when installed); argv: port, WebSocket protocol.
# CLASSMOOD_BENCH_PROFILE=file.prof writes the server's cProfile statistics there when it stops.
_SERVER_CODE = """
import cProfile, os, signal, sys, uvicorn
from classmood.config import Settings
from classmood.server.app import create_app, uvicorn_options
from classmood.server.bootstrap import prepare_server
settings = Settings().resolved()
prepare_server(settings)
app = create_app(settings.model_copy(update={"auto_migrate": False}))
profile = os.environ.get("CLASSMOOD_BENCH_PROFILE")
if profile:
    import time
    profiler = cProfile.Profile(time.process_time)  # CPU time: on a shared machine wall time counts waits
    def dump(*_):  # uvicorn hands SIGTERM back to this handler once it has shut down
        profiler.disable()
        profiler.dump_stats(f"{profile}.{os.getpid()}")
        os._exit(0)
    signal.signal(signal.SIGTERM, dump)
    profiler.enable()
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", ws=sys.argv[2], backlog=4096,
            **uvicorn_options(settings))
"""


@dataclass(frozen=True)
class ServerProcess:
    """One server under test."""

    url: str
    pid: int


@contextlib.contextmanager
def servers(count: int, database_url: str, redis_url: str, email: str, password: str,
            ws_impl: str = "auto") -> Iterator[list[ServerProcess]]:
    """``count`` ClassMood processes sharing one database (and Redis when more than one)."""
    with tempfile.TemporaryDirectory(prefix="cm-load-device-") as tmp:
        env = dict(os.environ, CLASSMOOD_DATA_DIR=tmp, CLASSMOOD_DEV="1", CLASSMOOD_ADMIN_EMAIL=email,
                   CLASSMOOD_ADMIN_PASSWORD=password, CLASSMOOD_DATABASE_URL=database_url,
                   CLASSMOOD_SECRET_KEY=secrets.token_urlsafe(32), CLASSMOOD_MAX_FPS="5",
                   CLASSMOOD_ANALYSIS_MODE="device", CLASSMOOD_REDIS_URL=redis_url if count > 1 else "")
        procs: list[subprocess.Popen[bytes]] = []
        out: list[ServerProcess] = []
        try:
            for _ in range(count):  # one after the other: the first migrates the database
                port = free_port()
                proc = subprocess.Popen([sys.executable, "-c", _SERVER_CODE, str(port), ws_impl], env=env)
                procs.append(proc)
                out.append(ServerProcess(f"http://127.0.0.1:{port}", proc.pid))
                _wait_until_up(out[-1].url, proc)
            yield out
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far, from /proc (0 where there is none)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_s() -> dict[int, float]:
    """CPU seconds so far of every PostgreSQL process of this machine, by pid (empty where /proc is missing)."""
    out: dict[int, float] = {}
    for entry in os.scandir("/proc") if os.path.isdir("/proc") else ():
        if entry.name.isdigit():
            with contextlib.suppress(OSError), open(f"/proc/{entry.name}/comm") as f:
                if f.read().strip() in ("postgres", "postmaster"):
                    out[int(entry.name)] = process_cpu_s(int(entry.name))
    return out


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat ((0, 0) where there is none)."""
    try:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return 0.0, 0.0
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return float(sum(values) - idle), float(sum(values))


# -- minimal clients ----------------------------------------------------------------------------------

class _Connection:
    """One kept-alive HTTP/1.1 connection; ``post`` sends a JSON body and returns (status, parsed JSON)."""

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


_NO_MASK = b"\x00\x00\x00\x00"  # RFC 6455 wants client frames masked; a zero key leaves them as they are


def ws_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (FIN set).

    >>> ws_frame(1, b"hi")
    b'\\x81\\x82\\x00\\x00\\x00\\x00hi'
    """
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + _NO_MASK + payload


class _WebSocket:
    """A minimal WebSocket client: text messages out, text messages in, pings answered."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, url: str, path: str) -> _WebSocket:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        reader, writer = await asyncio.open_connection(host, port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode("ascii"))
        status = await reader.readline()
        if b" 101 " not in status:
            writer.close()
            raise ConnectionError(f"no WebSocket upgrade: {status!r}")
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        return cls(reader, writer)

    def send(self, text: bytes) -> None:
        self.writer.write(ws_frame(1, text))

    async def recv(self) -> bytes:
        """The next text message; pings are answered on the way, a close raises ConnectionError."""
        while True:
            head = await self.reader.readexactly(2)
            opcode, n = head[0] & 0x0F, head[1] & 0x7F
            if n == 126:
                n = int.from_bytes(await self.reader.readexactly(2), "big")
            elif n == 127:
                n = int.from_bytes(await self.reader.readexactly(8), "big")
            payload = await self.reader.readexactly(n) if n else b""
            if opcode == 9:
                self.writer.write(ws_frame(10, payload))
            elif opcode == 8:
                raise ConnectionError(f"closed by the server ({int.from_bytes(payload[:2], 'big')})")
            elif opcode in (1, 2, 0):
                return payload

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.write(ws_frame(8, (1000).to_bytes(2, "big")))
        self.writer.close()


# -- students (in the generator processes) -------------------------------------------------------------

@dataclass
class _Tally(_Counters):
    """What one generator process saw; sent back to the parent."""

    sent: dict[str, float] = field(default_factory=dict)  # score id -> its ts (= its send time)
    acked: list[str] = field(default_factory=list)
    ack_delays: list[float] = field(default_factory=list)
    cpu_s: float = 0.0
    wall_s: float = 0.0


def _score(rng: Any, now: float) -> dict[str, Any]:
    raw = [rng.random() + (2.0 if k == 4 else 0.0) for k in range(len(LABELS))]  # mostly Neutral, as in class
    total = sum(raw)
    return {"id": str(uuid.uuid4()), "ts": now, "score": 0.9,
            "probs": {label: round(v / total, 4) for label, v in zip(LABELS, raw, strict=True)}}


@dataclass(frozen=True)
class _Plan:
    """When and how the students of one generator run."""

    session_id: int
    start_at: float
    stop_at: float
    drain_s: float
    interval_s: float


class _WsStudent:
    """A student page with its stream open: scores queued until their batch's ``scores_ack``."""

    def __init__(self, url: str, token: str, index: int, plan: _Plan, tally: _Tally) -> None:
        self.url, self.index, self.plan, self.tally = url, index, plan, tally
        self.path = f"/api/sessions/{plan.session_id}/stream?token={token}"
        self.pending: dict[str, dict[str, Any]] = {}  # not yet acknowledged
        self.queued: list[str] = []  # pending ids in no batch in flight
        self.inflight: dict[str, list[str]] = {}  # batch name -> its ids
        self.ws: _WebSocket | None = None
        self.reader: asyncio.Task[None] | None = None
        self.batches = 0

    async def ensure_open(self) -> bool:
        if self.ws is not None:
            return True
        try:
            self.ws = await asyncio.wait_for(_WebSocket.connect(self.url, self.path), 30)
        except (OSError, ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            self.tally.reconnects += 1
            return False
        self.reader = asyncio.create_task(self.read(self.ws))
        return True

    def lost_connection(self) -> None:
        # Whatever was in flight goes again, oldest first (the server drops the ids it has already).
        for ids in self.inflight.values():
            self.queued[:0] = [i for i in ids if i in self.pending]
        self.inflight.clear()
        if self.ws is not None:
            self.ws.close()
        self.ws = None

    async def read(self, ws: _WebSocket) -> None:
        try:
            while True:
                self.on_reply(json.loads(await ws.recv()))
        except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError):
            if self.ws is ws:
                self.tally.reconnects += 1
                self.lost_connection()

    def on_reply(self, reply: dict[str, Any]) -> None:
        ids = self.inflight.pop(str(reply.get("batch")), None)
        if ids is None:
            return
        tally = self.tally
        if reply.get("type") == "scores_ack":
            now = time.time()
            for i in ids:
                item = self.pending.pop(i, None)
                if item is not None:
                    tally.acked.append(i)
                    tally.ack_delays.append(now - item["ts"])
            tally.acknowledged += len(ids)
            tally.duplicates_acked += len(reply.get("duplicates", ()))
        elif reply.get("status") == 429 or int(reply.get("status") or 0) >= 500:
            tally.retried += 1
            self.queued[:0] = ids  # busy server: again with the next tick
        else:
            tally.errors += len(ids)
            for i in ids:
                self.pending.pop(i, None)

    def send_queued(self) -> None:
        if self.ws is None or not self.queued:
            return
        ids, self.queued = self.queued[:BATCH], self.queued[BATCH:]
        self.batches += 1
        name = f"{self.index}-{self.batches}"
        self.inflight[name] = ids
        message = {"type": "scores", "batch": name, "observations": [self.pending[i] for i in ids]}
        self.ws.send(json.dumps(message, separators=(",", ":")).encode())
        self.tally.requests += 1

    async def run(self, rng: Any) -> None:
        plan, tally = self.plan, self.tally
        next_at = plan.start_at + plan.interval_s * (self.index % 97) / 97  # pages start at random
        await self.ensure_open()  # the class joins before it starts: connecting is not what is measured
        await asyncio.sleep(max(0.0, next_at - time.time()))
        while True:
            now = time.time()
            producing = now < plan.stop_at
            if producing:
                item = _score(rng, now)
                tally.sent[item["id"]] = now
                self.pending[item["id"]] = item
                self.queued.append(item["id"])
                tally.scores_sent += 1
            elif not self.pending or now > plan.stop_at + plan.drain_s:
                break
            if await self.ensure_open():
                self.send_queued()
            next_at += plan.interval_s
            await asyncio.sleep(max(0.0, next_at - time.time()) if producing else 0.25)
        tally.unacked += len(self.pending)
        if self.reader is not None:
            self.reader.cancel()
        if self.ws is not None:
            self.ws.close()


async def _http_student(url: str, token: str, index: int, plan: _Plan, tally: _Tally, rng: Any) -> None:
    conn = _Connection(url)
    headers = f"Authorization: Bearer {token}\r\nAccept: application/json\r\n"
    path = f"/api/sessions/{plan.session_id}/observations"
    pending: list[dict[str, Any]] = []  # not yet acknowledged, oldest first (re-sent: the API is idempotent)
    next_at = plan.start_at + plan.interval_s * (index % 97) / 97
    await asyncio.sleep(max(0.0, next_at - time.time()))
    while True:
        now = time.time()
        producing = now < plan.stop_at
        if producing:
            item = _score(rng, now)
            tally.sent[item["id"]] = now
            pending.append(item)
            tally.scores_sent += 1
        elif not pending or now > plan.stop_at + plan.drain_s:
            break
        batch = pending[:BATCH]
        try:
            tally.requests += 1
            status, reply = await conn.post(path, json.dumps({"observations": batch}).encode(), headers)
        except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError):
            conn.close()
            status, reply = 0, None
        if status == 200 and isinstance(reply, dict):
            done = time.time()
            for item in batch:
                tally.acked.append(item["id"])
                tally.ack_delays.append(done - item["ts"])
            tally.acknowledged += len(batch)
            tally.duplicates_acked += int(reply.get("duplicates", 0))
            del pending[: len(batch)]
        elif status in (0, 429) or status >= 500:
            tally.retried += 1  # kept, sent again with the next score
        else:
            tally.errors += len(batch)
            del pending[: len(batch)]
        next_at += plan.interval_s
        await asyncio.sleep(max(0.0, next_at - time.time()) if producing else 0.5)
    tally.unacked += len(pending)
    conn.close()


async def _generate(transport: str, students: list[tuple[str, str, int]], plan: _Plan) -> _Tally:
    import random

    tally = _Tally()
    cpu0, wall0 = time.process_time(), time.time()
    if transport == "ws":
        await asyncio.gather(*(_WsStudent(url, token, i, plan, tally).run(random.Random(i))
                               for url, token, i in students))
    else:
        await asyncio.gather(*(_http_student(url, token, i, plan, tally, random.Random(i))
                               for url, token, i in students))
    tally.cpu_s, tally.wall_s = time.process_time() - cpu0, time.time() - wall0
    return tally


def generator_main(transport: str, students: list[tuple[str, str, int]], plan: _Plan) -> _Tally:
    """One load-generator process: its students until the plan's end (uvloop when installed)."""
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return asyncio.run(_generate(transport, students, plan))


# -- dashboards and the run (in the parent) -------------------------------------------------------------

async def _dashboard(client: httpx.AsyncClient, session_id: int, auth: dict[str, str],
                     heard: list[tuple[str, float]]) -> None:
    while True:
        try:
            async for event, data in sse_events(client, f"/api/sessions/{session_id}/live", auth):
                if event == "observation":
                    heard.append((json.loads(data).get("client_id"), time.time()))
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


def _account(result: DeviceLoadResult, tallies: list[_Tally], heard: list[tuple[str, float]],
             stored_ids: list[str]) -> None:
    sent: dict[str, float] = {}
    acked: set[str] = set()
    for t in tallies:
        for counter in fields(_Counters):
            setattr(result, counter.name, getattr(result, counter.name) + getattr(t, counter.name))
        sent.update(t.sent)
        acked.update(t.acked)
        result.ack_delays.extend(t.ack_delays)
        result.generator_cpu_pct.append(100 * t.cpu_s / t.wall_s if t.wall_s else 0.0)
    result.dashboard_events = len(heard)
    seen: set[str] = set()
    for cid, at in heard:
        if cid in sent and cid not in seen:
            seen.add(cid)
            result.dashboard_delays.append(at - sent[cid])
    result.stored = len(stored_ids)
    result.duplicated = len(stored_ids) - len(set(stored_ids))
    result.lost = len(acked - set(stored_ids))


async def _run(procs: list[ServerProcess], email: str, password: str, result: DeviceLoadResult,
               drain_s: float) -> None:
    from classmood.benchmarks.load import create_session

    urls = [p.url for p in procs]
    heard: list[tuple[str, float]] = []
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(httpx.AsyncClient(base_url=u, timeout=120)) for u in urls]
        setup = await create_session(clients[0], email, password)
        r = await clients[0].patch(f"/api/sessions/{setup.session_id}", headers=setup.auth,
                                   json={"analysis_mode": "device", "frame_interval_s": result.interval_s})
        r.raise_for_status()
        tokens = await _join_all(clients[0], setup.code, result.students)
        # Dashboards listen on the last servers, students start on the first: events cross processes.
        listeners = [asyncio.create_task(_dashboard(clients[-1 - k % len(clients)], setup.session_id, setup.auth,
                                                    heard)) for k in range(result.dashboards)]
        # Time for the generators to start (a fresh interpreter each) and to open their connections.
        start = time.time() + 4.0 + result.students / 1000
        plan = _Plan(setup.session_id, start, start + result.seconds, drain_s, result.interval_s)
        shares = [[(urls[i % len(urls)], tokens[i], i) for i in range(g, result.students, result.generators)]
                  for g in range(result.generators)]
        loop = asyncio.get_running_loop()
        with ProcessPoolExecutor(result.generators, mp_context=get_context("spawn")) as pool:
            futures = [loop.run_in_executor(pool, generator_main, result.transport, share, plan) for share in shares]
            await asyncio.sleep(max(0.0, start - time.time()))
            cpu0 = [process_cpu_s(p.pid) for p in procs]
            own0 = time.process_time()
            pg0 = postgres_cpu_s()
            busy0, total0 = machine_cpu()
            result.load_before = os.getloadavg()
            tallies = list(await asyncio.gather(*futures))
        result.wall_s = time.time() - start
        result.dashboard_cpu_pct = 100 * (time.process_time() - own0) / result.wall_s
        pg1 = postgres_cpu_s()
        result.postgres_cpu_pct = 100 * sum(v - pg0.get(pid, 0.0) for pid, v in pg1.items()) / result.wall_s
        result.load_after = os.getloadavg()
        busy1, total1 = machine_cpu()
        result.machine_busy_pct = 100 * (busy1 - busy0) / (total1 - total0) if total1 > total0 else 0.0
        result.server_cpu_pct = [100 * (process_cpu_s(p.pid) - c) / result.wall_s for p, c in zip(procs, cpu0,
                                                                                                   strict=True)]
        await asyncio.sleep(2.0)  # the last events are on their way
        for task in listeners:
            task.cancel()
        r = await clients[-1].get(f"/api/sessions/{setup.session_id}/export.csv", headers=setup.auth)
        r.raise_for_status()
        _account(result, tallies, heard, [row["client_id"] for row in csv.DictReader(io.StringIO(r.text))])
        (await clients[0].post(f"/api/sessions/{setup.session_id}/end", headers=setup.auth)).raise_for_status()


def run_device_load(students: int, seconds: float, *, interval_s: float = 1.0, drain_s: float = 30.0,
                    servers_count: int = 1, dashboards: int = 1, database_url: str = DEFAULT_POSTGRES,
                    redis_url: str = DEFAULT_REDIS, transport: str = "ws", generators: int = 0,
                    ws_impl: str = "auto") -> DeviceLoadResult:
    """Run the on-device load benchmark on fresh local servers over PostgreSQL (and Redis for several).

    ``generators=0`` picks one load-generator process per 1,000 students (at least one, at most four).
    """
    if students < 1 or seconds <= 0 or interval_s <= 0 or servers_count < 1 or dashboards < 1 or generators < 0:
        raise ValueError("students, servers and dashboards must be >= 1, seconds and interval_s > 0")
    if transport not in TRANSPORTS:
        raise ValueError(f"transport is one of {', '.join(TRANSPORTS)}")
    if not database_url.startswith("postgresql"):
        raise ValueError("the on-device load benchmark runs on PostgreSQL (--database-url postgresql+psycopg://…)")
    generators = generators or min(4, max(1, -(-students // 1000)))
    result = DeviceLoadResult(students=students, seconds=seconds, interval_s=interval_s, servers=servers_count,
                              dashboards=dashboards, transport=transport, generators=min(generators, students))
    email, password = "load-admin@example.org", secrets.token_urlsafe(16)
    with pg_schema(database_url) as url, servers(servers_count, url, redis_url, email, password, ws_impl) as procs:
        asyncio.run(_run(procs, email, password, result, drain_s))
    return result


def format_device_load(result: DeviceLoadResult) -> str:
    """A short human-readable report of one run."""
    s = result.summary()

    def ms(v: float | None) -> str:
        return "–" if v is None else f"{1000 * v:.0f} ms"

    def cpu(values: list[float]) -> str:
        return " + ".join(f"{v:.0f} %" for v in values) or "–"

    verdict = "sustained" if result.sustained() else "NOT sustained"
    how = "WebSocket stream" if result.transport == "ws" else "HTTP POST"
    return "\n".join([
        f"on-device students {s['students']} · {s['seconds']:.0f} s · a score every {s['interval_s']:g} s each over "
        f"the {how} · {s['servers']} server process(es) on PostgreSQL · {s['dashboards']} dashboard(s): {verdict}",
        f"scores sent {s['scores_sent']} in {s['requests']} messages · acknowledged {s['acknowledged']} · "
        f"stored {s['stored']} ({s['observations_per_s']:.0f} observations/s) · lost {s['lost']} · "
        f"duplicated {s['duplicated']} · unacknowledged {s['unacked']} · retried {s['retried']} · "
        f"reconnects {s['reconnects']} · refused {s['errors']}",
        f"score → ack: median {ms(s['ack_delay_median_s'])}, p95 {ms(s['ack_delay_p95_s'])}",
        f"score → dashboard: median {ms(s['dashboard_delay_median_s'])}, p95 {ms(s['dashboard_delay_p95_s'])} "
        f"({s['dashboard_events']} events)",
        f"CPU (100 % = one core): server(s) {cpu(result.server_cpu_pct)} · {result.generators} load generator(s) "
        f"{cpu(result.generator_cpu_pct)} · dashboards {result.dashboard_cpu_pct:.0f} % · PostgreSQL "
        f"{result.postgres_cpu_pct:.0f} % · "
        f"whole machine {result.machine_busy_pct:.0f} % busy · load average "
        f"{result.load_before[0]:.2f} before, {result.load_after[0]:.2f} after",
    ])
