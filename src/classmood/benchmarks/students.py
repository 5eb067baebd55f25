"""The simulated on-device students of the load and fault benchmarks, as the student page behaves.

Each student makes one score (seven probabilities) every ``interval_s`` and keeps it in its outbox until the
server acknowledges it; after a lost connection or a 429/5xx answer the unacknowledged scores go again
(the server recognises the ids it has already stored). :class:`WsStudent` is the page with its stream open,
:func:`http_student` its HTTP fallback. A generator process (:func:`generator_main`) runs a share of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from classmood.benchmarks.clients import HttpConnection, WebSocket
from classmood.labels import LABELS

BATCH = 100  # scores per message or request at most, as on the student page


@dataclass(kw_only=True)
class Counters:
    """What the students counted: each generator process keeps its own, the run adds them up."""

    requests: int = 0
    scores_sent: int = 0
    acknowledged: int = 0
    acknowledged_over_http: int = 0  # of those, the HTTP students' (a mixed class has both kinds)
    duplicates_acked: int = 0
    retried: int = 0
    reconnects: int = 0
    errors: int = 0
    unacked: int = 0



@dataclass
class Tally(Counters):
    """What one generator process saw; sent back to the parent."""

    sent: dict[str, float] = field(default_factory=dict)  # score id -> its ts (= its send time)
    acked: list[str] = field(default_factory=list)
    ack_delays: list[float] = field(default_factory=list)
    cpu_s: float = 0.0
    wall_s: float = 0.0
    refused: dict[int, int] = field(default_factory=dict)  # HTTP status of each 429/5xx answer -> how many
    details: set[str] = field(default_factory=set)  # what those answers said

    def busy(self, status: int, detail: Any) -> None:
        """Count a 429/5xx answer (or status 0, no answer at all): the scores stay in the outbox."""
        self.retried += 1
        if status:
            self.refused[status] = self.refused.get(status, 0) + 1
            self.details.add(str(detail))


def score(rng: Any, now: float) -> dict[str, Any]:
    """One device score with a fresh id, made at ``now``: mostly Neutral, as in class."""
    raw = [rng.random() + (2.0 if k == 4 else 0.0) for k in range(len(LABELS))]
    total = sum(raw)
    return {"id": str(uuid.uuid4()), "ts": now, "score": 0.9,
            "probs": {label: round(v / total, 4) for label, v in zip(LABELS, raw, strict=True)}}


@dataclass
class Plan:
    """When and how the students of one generator run (read on every tick: a fault run may move ``stop_at``)."""

    session_id: int
    start_at: float
    stop_at: float
    drain_s: float
    interval_s: float

    def first_tick(self, index: int) -> float:
        """When student ``index`` scores first: the pages of a class start spread over one interval."""
        return self.start_at + self.interval_s * (index % 97) / 97

    def produce(self, tally: Tally, rng: Any, now: float) -> dict[str, Any] | None:
        """A new score made at ``now`` while the class lasts, counted as sent; ``None`` once it is over."""
        if now >= self.stop_at:
            return None
        item = score(rng, now)
        tally.sent[item["id"]] = now
        tally.scores_sent += 1
        return item


class WsStudent:
    """A student page with its stream open: scores queued until their batch's ``scores_ack``."""

    def __init__(self, url: str, token: str, index: int, plan: Plan, tally: Tally) -> None:
        self.url, self.index, self.plan, self.tally = url, index, plan, tally
        self.path = f"/api/sessions/{plan.session_id}/stream?token={token}"
        self.pending: dict[str, dict[str, Any]] = {}  # not yet acknowledged
        self.queued: list[str] = []  # pending ids in no batch in flight
        self.inflight: dict[str, list[str]] = {}  # batch name -> its ids
        self.ws: WebSocket | None = None
        self.reader: asyncio.Task[None] | None = None
        self.batches = 0

    async def ensure_open(self) -> bool:
        if self.ws is not None:
            return True
        try:
            self.ws = await asyncio.wait_for(WebSocket.connect(self.url, self.path), 30)
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

    async def read(self, ws: WebSocket) -> None:
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
            tally.busy(int(reply["status"]), reply.get("detail"))
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
        next_at = plan.first_tick(self.index)
        await self.ensure_open()  # the class joins before it starts: connecting is not what is measured
        await asyncio.sleep(max(0.0, next_at - time.time()))
        while True:
            now = time.time()
            item = plan.produce(tally, rng, now)
            producing = item is not None
            if item is not None:
                self.pending[item["id"]] = item
                self.queued.append(item["id"])
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


async def http_student(url: str, token: str, index: int, plan: Plan, tally: Tally, rng: Any) -> None:
    """The page's HTTP fallback: POST the outbox (oldest first) with every new score, keep it on 429/5xx."""
    conn = HttpConnection(url)
    headers = f"Authorization: Bearer {token}\r\nAccept: application/json\r\n"
    path = f"/api/sessions/{plan.session_id}/observations"
    pending: list[dict[str, Any]] = []  # not yet acknowledged, oldest first (re-sent: the API is idempotent)
    next_at = plan.first_tick(index)
    await asyncio.sleep(max(0.0, next_at - time.time()))
    while True:
        now = time.time()
        item = plan.produce(tally, rng, now)
        producing = item is not None
        if item is not None:
            pending.append(item)
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
            tally.acknowledged_over_http += len(batch)
            tally.duplicates_acked += int(reply.get("duplicates", 0))
            del pending[: len(batch)]
        elif status in (0, 429) or status >= 500:
            tally.busy(status, reply.get("detail") if isinstance(reply, dict) else reply)  # sent again with the next
        else:
            tally.errors += len(batch)
            del pending[: len(batch)]
        next_at += plan.interval_s
        await asyncio.sleep(max(0.0, next_at - time.time()) if producing else 0.5)
    tally.unacked += len(pending)
    conn.close()


async def generate(transport: str, students: list[tuple[str, str, int]], plan: Plan) -> Tally:
    """Run ``(url, token, index)`` students over ``transport`` (``mixed``: even indices on the stream, odd ones
    over HTTP) until the plan's end; what they counted."""
    import random

    def on_stream(i: int) -> bool:
        return transport == "ws" or (transport == "mixed" and i % 2 == 0)

    tally = Tally()
    cpu0, wall0 = time.process_time(), time.time()
    await asyncio.gather(*(WsStudent(url, token, i, plan, tally).run(random.Random(i)) if on_stream(i)
                           else http_student(url, token, i, plan, tally, random.Random(i))
                           for url, token, i in students))
    tally.cpu_s, tally.wall_s = time.process_time() - cpu0, time.time() - wall0
    return tally


def generator_pid() -> int:
    """A started generator process's id, once it has imported this module (the parent waits for every one)."""
    time.sleep(0.05)  # a busy worker: the others answer the next asks while this one sleeps
    return os.getpid()


def generator_main(transport: str, students: list[tuple[str, str, int]], plan: Plan) -> Tally:
    """One load-generator process: its students until the plan's end (uvloop when installed)."""
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return asyncio.run(generate(transport, students, plan))
