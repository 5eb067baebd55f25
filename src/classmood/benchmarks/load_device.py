"""Load benchmark of on-device analysis: N simulated students send score batches, dashboards listen.

``classmood bench load --mode device``: each student is what the student page becomes in on-device mode,
one score (seven probabilities) every ``interval_s``, kept until acknowledged and re-sent after a reconnect.

- ``transport="ws"`` (the default, what the page does while its stream is open): one WebSocket per student,
  ``{"type": "scores", "batch", "observations"}`` messages on ``/api/sessions/{id}/stream``, each answered
  by a ``scores_ack`` after the server's COMMIT;
- ``transport="http"``: ``POST /api/sessions/{id}/observations`` on a kept-alive HTTP/1.1 connection (the
  page's fallback), for comparison;
- ``transport="mixed"``: half the students each way, as a class where some pages fell back to HTTP.

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
import contextlib
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import httpx

from classmood.benchmarks.clients import Dashboard, device_class, settle, stored_ids
from classmood.benchmarks.cpu import machine_cpu, postgres_cpu_s, process_cpu_s
from classmood.benchmarks.device_report import DeviceLoadResult, account
from classmood.benchmarks.servers import ServerProcess, pg_schema, server_env, server_processes, tls
from classmood.benchmarks.students import Plan, generator_main, generator_pid

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
TRANSPORTS = ("ws", "http", "mixed")  # mixed: half the students on each, in one run


@contextlib.contextmanager
def device_servers(count: int, database_url: str, redis_url: str, email: str, password: str,
                   ws_impl: str = "auto") -> Iterator[list[ServerProcess]]:
    """``count`` on-device ClassMood processes sharing one database (and Redis when more than one)."""
    with tempfile.TemporaryDirectory(prefix="cm-load-device-") as tmp:
        env = server_env(tmp, email, password, CLASSMOOD_DATABASE_URL=database_url, CLASSMOOD_MAX_FPS="5",
                         CLASSMOOD_ANALYSIS_MODE="device", CLASSMOOD_REDIS_URL=redis_url if count > 1 else "")
        with server_processes(count, env, ws_impl) as procs:
            yield procs


async def _run(procs: list[ServerProcess], email: str, password: str, result: DeviceLoadResult,
               drain_s: float) -> None:
    urls = [p.url for p in procs]
    heard: list[tuple[str, float]] = []
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(httpx.AsyncClient(base_url=u, timeout=120, verify=tls()))
                   for u in urls]
        setup, tokens = await device_class(clients[0], email, password, result.students, result.interval_s)
        # Dashboards listen on the last servers, students start on the first: events cross processes.
        listeners = [asyncio.create_task(Dashboard(heard).listen(clients[-1 - k % len(clients)], setup.session_id,
                                                                 setup.auth)) for k in range(result.dashboards)]
        shares = [[(urls[i % len(urls)], tokens[i], i) for i in range(g, result.students, result.generators)]
                  for g in range(result.generators)]
        loop = asyncio.get_running_loop()
        with ProcessPoolExecutor(result.generators, mp_context=get_context("spawn")) as pool:
            # Every generator started (a fresh interpreter each, seconds on a busy machine) before the clock
            # starts: a fixed wait was too long on a quiet machine and could be too short on a busy one.
            pids: set[int] = set()
            while len(pids) < result.generators:
                pids.update(await asyncio.gather(*(loop.run_in_executor(pool, generator_pid)
                                                   for _ in range(result.generators))))
            # Time for the students to open their connections (and the dashboards to subscribe).
            start = time.time() + 1.0 + result.students / 1000
            plan = Plan(setup.session_id, start, start + result.seconds, drain_s, result.interval_s)
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
        acked = sum(len(tally.acked) for tally in tallies)
        await settle(lambda: len(heard) >= result.dashboards * acked)  # the last events are on their way
        for task in listeners:
            task.cancel()
        account(result, tallies, heard, await stored_ids(clients[-1], setup))
        # On the connection just used: the first server's has been idle since the set-up, and a server may close
        # an idle kept-alive connection just as a request goes out on it.
        (await clients[-1].post(f"/api/sessions/{setup.session_id}/end", headers=setup.auth)).raise_for_status()


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
    with (pg_schema(database_url) as url,
          device_servers(servers_count, url, redis_url, email, password, ws_impl) as procs):
        asyncio.run(_run(procs, email, password, result, drain_s))
    return result
