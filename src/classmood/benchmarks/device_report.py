"""The figures of an on-device load run, and its report: what the students counted, what the database holds.

"Lost" counts acknowledged scores that are not in the session's CSV export, "duplicated" rows stored twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from classmood.benchmarks.load import delay_summary, pct
from classmood.benchmarks.students import Counters, Tally

SUSTAINED_P95_S = 1.0  # the goal: score to dashboard within a second for 95 % of scores


@dataclass
class DeviceLoadResult(Counters):
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


def account(result: DeviceLoadResult, tallies: list[Tally], heard: list[tuple[str, float]],
             stored_ids: list[str]) -> None:
    sent: dict[str, float] = {}
    acked: set[str] = set()
    for t in tallies:
        for counter in fields(Counters):
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


def format_device_load(result: DeviceLoadResult) -> str:
    """A short human-readable report of one run."""
    s = result.summary()

    def ms(v: float | None) -> str:
        return "–" if v is None else f"{1000 * v:.0f} ms"

    def cpu(values: list[float]) -> str:
        return " + ".join(f"{v:.0f} %" for v in values) or "–"

    verdict = "sustained" if result.sustained() else "NOT sustained"
    how = {"ws": "WebSocket stream", "http": "HTTP POST"}.get(result.transport, "WebSocket stream and HTTP POST")
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
