"""One class of on-device students through a fault, and what it did to their scores.

Half the students are the student page with its stream open (:class:`~classmood.benchmarks.students.WsStudent`),
half send over HTTP, as the page's fallback and the desktop agent do; each keeps its scores in an outbox until
they are acknowledged, and sends the rest again after a refusal or a lost connection. A teacher's dashboard
listens (reconnecting by itself), and the teacher's client asks for the session four times a second, so that
the answers of the server while the fault lasts are seen. At ``fault_at_s`` the fault's ``down()`` runs,
``down_s`` later its ``up()``. In the end the session's CSV export says what was stored.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import httpx

from classmood.benchmarks.clients import Dashboard, device_class, settle, stored_ids
from classmood.benchmarks.servers import tls
from classmood.benchmarks.students import Plan, Tally, WsStudent, http_student

PROBE_EVERY_S = 0.25
AFTER_FAULT_S = 3.0  # the class goes on at least this long after the fault


@dataclass(frozen=True)
class Fault:
    """What breaks and how it comes back (both run in a thread)."""

    down: Callable[[], object]
    up: Callable[[], object]


@dataclass(frozen=True)
class ClassPlan:
    """The class: how many students, for how long, a score every ``interval_s`` each; the fault starts
    ``fault_at_s`` into it and lasts ``down_s``; the class goes on at least ``after_fault_s`` after it."""

    students: int = 30
    seconds: float = 20.0
    interval_s: float = 1.0
    drain_s: float = 30.0
    fault_at_s: float = 5.0
    down_s: float = 5.0
    after_fault_s: float = AFTER_FAULT_S

    def check(self) -> None:
        """ValueError unless the numbers make a class with a fault inside it."""
        if (self.students < 1 or self.interval_s <= 0 or self.fault_at_s < 0 or self.down_s <= 0
                or self.after_fault_s <= 0):
            raise ValueError("students >= 1, interval_s > 0, fault_at_s >= 0, down_s > 0 and after_fault_s > 0")
        if self.fault_at_s + self.down_s >= self.seconds:
            raise ValueError("the fault must be over before the class ends (fault_at_s + down_s < seconds)")


@dataclass
class Observed:
    """What one class saw: the students' tally, the dashboard, the teacher's probes, and what was stored."""

    tally: Tally
    dashboard: Dashboard
    probes: list[tuple[float, int]] = field(default_factory=list)  # (time, HTTP status; 0 = no answer)
    stored: list[str] = field(default_factory=list)
    fault_start: float = 0.0  # down() called
    fault_end: float = 0.0  # up() returned: the service is back

    def ack_times(self) -> list[float]:
        """When each acknowledged score was acknowledged (its send time plus its delay)."""
        return [self.tally.sent[i] + d for i, d in zip(self.tally.acked, self.tally.ack_delays, strict=True)]


async def _probe(client: httpx.AsyncClient, session_id: int, auth: dict[str, str],
                 probes: list[tuple[float, int]]) -> None:
    while True:
        try:
            status = (await client.get(f"/api/sessions/{session_id}", headers=auth, timeout=5)).status_code
        except httpx.HTTPError:
            status = 0
        probes.append((time.time(), status))
        await asyncio.sleep(PROBE_EVERY_S)


async def _break(fault: Fault, plan: ClassPlan, timing: Plan, observed: Observed) -> None:
    await asyncio.sleep(max(0.0, timing.start_at + plan.fault_at_s - time.time()))
    observed.fault_start = time.time()
    # The class lasts until the fault is over, however long stopping and starting take on a busy machine:
    # students who stopped before it ended would show no recovery.
    planned_stop, timing.stop_at = timing.stop_at, math.inf
    await asyncio.to_thread(fault.down)
    await asyncio.sleep(plan.down_s)
    await asyncio.to_thread(fault.up)
    observed.fault_end = time.time()
    timing.stop_at = max(planned_stop, observed.fault_end + plan.after_fault_s)


def _students(url: str, tokens: list[str], plan: Plan, tally: Tally) -> list[Coroutine[Any, Any, None]]:
    return [WsStudent(url, token, i, plan, tally).run(random.Random(i)) if i % 2 == 0
            else http_student(url, token, i, plan, tally, random.Random(i)) for i, token in enumerate(tokens)]


async def run_class(student_url: str, dashboard_url: str, admin: tuple[str, str], plan: ClassPlan,
                    fault: Fault) -> Observed:
    """Students on ``student_url``, the dashboard on ``dashboard_url`` (another process, or the same), the
    fault in the middle; ``admin`` is the (email, password) of the servers' first admin."""
    plan.check()
    async with (httpx.AsyncClient(base_url=student_url, timeout=30, verify=tls()) as http,
                httpx.AsyncClient(base_url=dashboard_url, timeout=30, verify=tls()) as dash):
        setup, tokens = await device_class(http, *admin, plan.students, plan.interval_s)
        observed = Observed(Tally(), Dashboard())
        background = [asyncio.create_task(observed.dashboard.listen(dash, setup.session_id, setup.auth)),
                      asyncio.create_task(_probe(http, setup.session_id, setup.auth, observed.probes))]
        start = time.time() + 1.0  # the dashboard subscribes first
        timing = Plan(setup.session_id, start, start + plan.seconds, plan.drain_s, plan.interval_s)
        breaking = asyncio.create_task(_break(fault, plan, timing, observed))
        await asyncio.gather(*_students(student_url, tokens, timing, observed.tally))
        await breaking
        # The last live events are on their way: until the last score acknowledged is heard (events lost while
        # the fault lasted never come), at most 2 s.
        last = max(zip(observed.ack_times(), observed.tally.acked, strict=True), default=(0.0, ""))[1]
        await settle(lambda: any(cid == last for cid, _ in observed.dashboard.heard))
        for task in background:
            task.cancel()
        observed.stored = await stored_ids(http, setup)
        (await http.post(f"/api/sessions/{setup.session_id}/end", headers=setup.auth)).raise_for_status()
    return observed
