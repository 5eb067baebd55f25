"""Fault benchmark: a class of on-device students through a database restart, a Redis restart and a full disk.

``classmood bench faults`` runs each scenario on servers, databases and Redis of its own (the machine's shared
PostgreSQL and Redis are never touched) and reports, for each: scores sent, stored, lost (acknowledged but not
stored), duplicated (stored twice), the answers the server gave while the fault lasted, and the recovery time
(fault over → first score acknowledged, and → first live event on the dashboard).

- ``postgres``: one server on a private PostgreSQL cluster, stopped (``pg_ctl stop -m fast``, as a restart
  does) for ``down_s`` seconds mid-class and started again. The server must answer 503 with a clear message
  while it is down, never 500, and recover by itself (its pool's pre-ping replaces dead connections).
- ``redis``: two server processes on one SQLite file and a private Redis; the students are on the first, the
  dashboard listens on the second; Redis is stopped and started again. Live events must resume on the
  second process's dashboard within seconds, and no stored observation may be affected.
- ``sqlite``: one server on SQLite whose database may not grow: its connections get SQLite's own
  ``PRAGMA max_page_count`` (set from a file the benchmark writes), which makes SQLite fail exactly as on a
  full disk (SQLITE_FULL, "database or disk is full"). The server must answer 503, lose nothing committed
  (``PRAGMA integrity_check`` afterwards) and store again once the limit is lifted.

A scenario passes when nothing is lost, duplicated or left unacknowledged, no answer was a 500, the fault's
503 was seen where the fault stops writes, and scores and live events flowed again after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import sqlite3
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from classmood.benchmarks.fault_class import ClassPlan, Fault, Observed, run_class
from classmood.benchmarks.servers import server_env, server_processes, start_server, stop_server
from classmood.benchmarks.services import private_postgres, private_redis

SCENARIOS = ("postgres", "redis", "sqlite")
TITLES = {"postgres": "PostgreSQL restarted mid-class", "redis": "Redis restarted, two server processes",
          "sqlite": "SQLite disk full"}
ADMIN_EMAIL = "faults-admin@example.org"

# Run in the server process before the app is built: every pooled SQLite connection takes the page limit
# written in the file on checkout (0 or none: no limit), so the benchmark can fill and free the "disk".
PAGE_LIMIT_PRELUDE = """
import os
from sqlalchemy import event
from sqlalchemy.pool import Pool
_limit_file = os.environ["CM_FAULT_PAGE_LIMIT_FILE"]
@event.listens_for(Pool, "checkout")
def _page_limit(dbapi_connection, record, _proxy):
    try:
        with open(_limit_file) as f:
            limit = int(f.read().strip() or 0)
    except (OSError, ValueError):
        limit = 0
    if record.info.get("page_limit") != limit:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA max_page_count = {limit or 1073741823}")  # below the size: the size
        cursor.close()
        record.info["page_limit"] = limit
"""


@dataclass
class FaultResult:
    """Figures of one scenario; times in seconds."""

    scenario: str
    outcome: str = "passed"  # passed, FAILED: why, or skipped: why
    students: int = 0
    outage_s: float = 0.0
    sent: int = 0
    acknowledged: int = 0
    stored: int = 0
    lost: int = 0
    duplicated: int = 0
    unacked: int = 0
    refused: dict[int, int] = field(default_factory=dict)  # the students' 429/5xx answers by status
    probes: dict[int, int] = field(default_factory=dict)  # the teacher's requests during the run, by status
    details: list[str] = field(default_factory=list)  # what the refusals said
    recovery_s: float | None = None  # fault over -> first score acknowledged after it
    caught_up_s: float | None = None  # fault over -> every score made before then acknowledged (the backlog)
    dashboard_recovery_s: float | None = None  # fault over -> first live event on the dashboard after it
    dashboard_reconnects: int = 0
    live_missed: int = 0  # stored scores whose live event never reached the dashboard (live is best effort)
    integrity: str = ""  # sqlite: PRAGMA integrity_check afterwards

    def summary(self) -> dict[str, Any]:
        """The figures as JSON-ready values."""
        return asdict(self)


def _first_after(times: Iterable[float], t0: float) -> float | None:
    after = [t - t0 for t in times if t >= t0]
    return min(after) if after else None


def account(scenario: str, observed: Observed, students: int) -> FaultResult:
    """The figures of one class, and its verdict."""
    tally, acked = observed.tally, set(observed.tally.acked)
    result = FaultResult(scenario, students=students, outage_s=observed.fault_end - observed.fault_start,
                         sent=tally.scores_sent, acknowledged=len(acked), stored=len(observed.stored),
                         lost=len(acked - set(observed.stored)),
                         duplicated=len(observed.stored) - len(set(observed.stored)), unacked=tally.unacked,
                         refused=dict(tally.refused), details=sorted(tally.details),
                         dashboard_reconnects=observed.dashboard.reconnects)
    for _, status in observed.probes:
        result.probes[status] = result.probes.get(status, 0) + 1
    acks = dict(zip(tally.acked, observed.ack_times(), strict=True))
    result.recovery_s = _first_after(acks.values(), observed.fault_end)
    backlog = [at for i, at in acks.items() if tally.sent[i] < observed.fault_end]
    result.caught_up_s = max(0.0, max(backlog) - observed.fault_end) if backlog else None
    result.live_missed = len(set(observed.stored) - {cid for cid, _ in observed.dashboard.heard})
    result.dashboard_recovery_s = _first_after((t for _, t in observed.dashboard.heard), observed.fault_end)
    result.outcome = verdict(result, tally.errors, expect_503=scenario != "redis")
    return result


def verdict(result: FaultResult, errors: int, *, expect_503: bool) -> str:
    """``passed``, or ``FAILED:`` with every reason."""
    why = [f"{n} {name}" for n, name in ((result.lost, "lost"), (result.duplicated, "duplicated"),
                                         (result.unacked, "unacknowledged"), (errors, "refused for good")) if n]
    answers = {**result.refused}
    for status, n in result.probes.items():
        answers[status] = answers.get(status, 0) + n
    why += [f"{n} answers {status}" for status, n in answers.items() if status >= 500 and status != 503]
    if expect_503 and not answers.get(503):
        why.append("no 503 while the fault lasted")
    if result.recovery_s is None:
        why.append("no score acknowledged after the fault")
    if result.dashboard_recovery_s is None:
        why.append("no live event on the dashboard after the fault")
    if result.integrity not in ("", "ok"):
        why.append(f"integrity check: {result.integrity}")
    return "FAILED: " + ", ".join(why) if why else "passed"


def _service(stack: contextlib.ExitStack, start: Callable[[], Any], scenario: str) -> tuple[Any, FaultResult | None]:
    """Start a private service, or the scenario's "skipped" result saying why it could not start."""
    try:
        return stack.enter_context(start()), None
    except RuntimeError as exc:
        return None, FaultResult(scenario, outcome=f"skipped: {exc}")


def _restart(scenario: str, start: Callable[[], Any], settings: Callable[[Any], dict[str, str]], servers: int,
             plan: ClassPlan) -> FaultResult:
    """A private service (``start``) that ``servers`` processes use (``settings``), stopped and started again
    mid-class; the students are on the first process, the dashboard on the last."""
    password = secrets.token_urlsafe(16)
    with contextlib.ExitStack() as stack:
        service, skipped = _service(stack, start, scenario)
        if skipped:
            return skipped
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="cm-faults-"))
        env = server_env(tmp, ADMIN_EMAIL, password, CLASSMOOD_ANALYSIS_MODE="device", **settings(service))
        procs = stack.enter_context(server_processes(servers, env))
        fault = Fault(down=service.stop, up=service.start)
        observed = asyncio.run(run_class(procs[0].url, procs[-1].url, (ADMIN_EMAIL, password), plan, fault))
    return account(scenario, observed, plan.students)


def postgres_restart(plan: ClassPlan) -> FaultResult:
    """PostgreSQL stopped (``-m fast``, as a restart does) and started again under one server."""
    return _restart("postgres", private_postgres, lambda pg: {"CLASSMOOD_DATABASE_URL": pg.url}, 1, plan)


def redis_restart(plan: ClassPlan) -> FaultResult:
    """Redis stopped and started again between two server processes (students on one, dashboard on the other)."""
    return _restart("redis", private_redis, lambda redis: {"CLASSMOOD_REDIS_URL": redis.url}, 2, plan)


def sqlite_disk_full(plan: ClassPlan) -> FaultResult:
    """SQLite's database may not grow for ``down_s`` seconds (its page limit), then may again."""
    password = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory(prefix="cm-faults-") as tmp:
        limit = Path(tmp) / "page-limit"
        env = server_env(tmp, ADMIN_EMAIL, password, CLASSMOOD_ANALYSIS_MODE="device",
                         CM_FAULT_PAGE_LIMIT_FILE=str(limit))
        server = start_server(env, prelude=PAGE_LIMIT_PRELUDE)
        try:
            fault = Fault(down=lambda: limit.write_text("1"), up=lambda: limit.write_text("0"))
            observed = asyncio.run(run_class(server.url, server.url, (ADMIN_EMAIL, password), plan, fault))
        finally:
            stop_server(server)
        with sqlite3.connect(Path(tmp) / "classmood.db") as db:
            integrity = str(db.execute("PRAGMA integrity_check").fetchone()[0])
    result = account("sqlite", observed, plan.students)
    result.integrity = integrity
    result.outcome = verdict(result, observed.tally.errors, expect_503=True)
    return result


RUNS: dict[str, Callable[[ClassPlan], FaultResult]] = {
    "postgres": postgres_restart, "redis": redis_restart, "sqlite": sqlite_disk_full}


def run_faults(scenarios: Iterable[str] = SCENARIOS, *, plan: ClassPlan | None = None,
               log: Callable[[str], None] | None = None) -> list[FaultResult]:
    """Run the scenarios one after the other; ``log`` hears each report as it is ready."""
    plan = plan or ClassPlan()
    names = list(scenarios)
    unknown = [n for n in names if n not in RUNS]
    if unknown:
        raise ValueError(f"unknown scenario {', '.join(unknown)}: choose from {', '.join(SCENARIOS)}")
    plan.check()
    results = []
    for name in names:
        results.append(RUNS[name](plan))
        if log:
            log(format_fault(results[-1]))
    return results


def _count(answers: dict[int, int]) -> str:
    return ", ".join(f"{status or 'no answer'} × {n}" for status, n in sorted(answers.items())) or "none"


def _secs(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


def format_fault(r: FaultResult) -> str:
    """A short human-readable report of one scenario."""
    head = f"{TITLES[r.scenario]}: {r.outcome}"
    if r.outcome.startswith("skipped"):
        return head
    lines = [
        f"{head} · {r.students} on-device students (half on the stream, half over HTTP) · down {r.outage_s:.1f} s",
        f"  sent {r.sent} · acknowledged {r.acknowledged} · stored {r.stored} · lost {r.lost} · "
        f"duplicated {r.duplicated} · unacknowledged {r.unacked}",
        f"  students' refusals (kept, sent again): {_count(r.refused)} · teacher's requests: {_count(r.probes)}",
        *(f"  said: {detail}" for detail in r.details),
        f"  recovery after the fault ended: first score acknowledged {_secs(r.recovery_s)}, the backlog "
        f"{_secs(r.caught_up_s)} · first live event on the dashboard {_secs(r.dashboard_recovery_s)} · "
        f"dashboard reconnects {r.dashboard_reconnects} · live events missed {r.live_missed} (best effort)",
    ]
    if r.integrity:
        lines.append(f"  integrity check of the SQLite file afterwards: {r.integrity}")
    return "\n".join(lines)
