"""Group commit of device batches: concurrent requests share one transaction and one INSERT.

Each request waits for its batch's own outcome, given only after the group's COMMIT, so an acknowledged
score is stored and a refused one is answered with its 4xx as before. Self-clocking: while one group is
written the next requests queue, so a quiet server writes at once and a busy one writes bigger groups.
One writer thread also keeps the worker threads (and the GIL) free for the event loop and the dashboards.
"""

from __future__ import annotations

import asyncio
import math
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

from anyio import to_thread
from sqlalchemy.orm import Session, sessionmaker

from classmood.server.errors import DomainError
from classmood.server.observations import service
from classmood.server.observations.context import Sender, SessionMeta, session_meta
from classmood.server.observations.service import NewObservation


@dataclass
class _Job:
    sender: Sender
    items: Sequence[NewObservation]
    done: asyncio.Future[tuple[SessionMeta, service.InsertResult]]
    patient: bool  # may wait LINGER_S for company


def _checked_meta(db: Session, sender: Sender, items: Sequence[NewObservation],
                  metas: dict[int, SessionMeta | DomainError]) -> SessionMeta:
    """The sender's live session (cached per group), after the checks of the batch's times and probabilities."""
    if sender.session_id not in metas:
        try:
            metas[sender.session_id] = session_meta(db, sender.session_id)
        except DomainError as exc:
            metas[sender.session_id] = exc
    meta = metas[sender.session_id]
    if isinstance(meta, DomainError):
        raise meta
    for item in items:
        meta.check_ts(item.ts)
    service.check_prob_count(items)
    return meta


Outcome = tuple[SessionMeta, service.InsertResult] | BaseException


def _write_group(sessions: sessionmaker[Session], jobs: Sequence[_Job]) -> list[Outcome]:
    """Check and store many batches in one transaction; per batch its outcome (the answer or its 4xx)."""
    outcomes: list[Outcome | None] = []
    with sessions() as db:
        metas: dict[int, SessionMeta | DomainError] = {}
        good: list[tuple[int, SessionMeta, service.Batch]] = []
        for job in jobs:
            try:
                meta = _checked_meta(db, job.sender, job.items, metas)
            except DomainError as exc:
                outcomes.append(exc)
                continue
            outcomes.append(None)  # its result once the group is committed
            good.append((len(outcomes) - 1, meta, service.Batch(job.sender.session_id, job.sender.participant_id,
                                                                job.items)))
        try:
            results = service.insert_batches(db, [batch for _, _, batch in good])
        except Exception:
            db.rollback()
            return _write_each(sessions, jobs)  # one bad batch (or an outage) must not fail the others: one by one
    for (k, meta, _), result in zip(good, results, strict=True):
        outcomes[k] = (meta, result)
    return [outcome for outcome in outcomes if outcome is not None]


def _write_each(sessions: sessionmaker[Session], jobs: Sequence[_Job]) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for job in jobs:
        try:
            with sessions() as db:
                meta = _checked_meta(db, job.sender, job.items, {})
                result = service.insert_observations(db, session_id=job.sender.session_id,
                                                     participant_id=job.sender.participant_id, items=job.items)
            outcomes.append((meta, result))
        except Exception as exc:  # handed to that batch's request, which answers it as before
            outcomes.append(exc)
    return outcomes


class GroupWriter:
    """The group commit of one event loop (see the module docstring); its queue and task belong to that loop."""

    MAX_JOBS = 500
    # Groups start at most this often. A group's fixed cost (its session check, participants' last-seen
    # update, COMMIT, a pool checkout) is paid per group, in the writer thread, holding the GIL for its
    # Python part: written back to back, small groups kept the thread busy and starved the event loop at
    # a few hundred students. Waiting for company costs a score at most this much; a quiet server, whose
    # last group is older than this, writes at once. Server-analysed frames wait only while the analysis
    # has a backlog (then the waiting saves about 2.5 ms of CPU a frame at 200 students): one client sending
    # frame after frame otherwise waited 20 ms for each, 50 a second instead of 170.
    LINGER_S = 0.02

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self._queue: list[_Job] = []
        self._task: asyncio.Task[None] | None = None
        self._last_start = -math.inf

    async def write(self, sender: Sender, items: Sequence[NewObservation], *,
                    patient: bool = True) -> tuple[SessionMeta, service.InsertResult]:
        """Check and store one participant's batch; its session's settings and the insert result.

        ``patient=False``: the batch does not wait for company (a group waits only if one of its batches may).
        """
        job = _Job(sender, items, asyncio.get_running_loop().create_future(), patient)
        self._queue.append(job)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        return await job.done

    async def _run(self) -> None:
        jobs: list[_Job] = []
        try:
            while self._queue:
                if (wait := self._last_start + self.LINGER_S - time.monotonic()) > 0 and \
                        len(self._queue) < self.MAX_JOBS and any(job.patient for job in self._queue):
                    await asyncio.sleep(wait)
                self._last_start = time.monotonic()
                jobs, self._queue = self._queue[: self.MAX_JOBS], self._queue[self.MAX_JOBS :]
                try:
                    outcomes: list[Outcome] = await to_thread.run_sync(_write_group, self.sessions, jobs)
                except Exception as exc:  # every waiting request must get an answer (its 5xx)
                    outcomes = [exc] * len(jobs)
                self._answer(jobs, outcomes)
                jobs = []
        except asyncio.CancelledError:  # server shutdown: nobody waits in vain
            for job in [*jobs, *self._queue]:
                job.done.cancel()
            raise

    @staticmethod
    def _answer(jobs: Sequence[_Job], outcomes: Sequence[Outcome]) -> None:
        for job, outcome in zip(jobs, outcomes, strict=True):
            if job.done.done():  # its request was cancelled (client gone): the rows are stored anyway
                continue
            if isinstance(outcome, BaseException):
                job.done.set_exception(outcome)
            else:
                job.done.set_result(outcome)


class GroupWriters:
    """The server's group writers, one per event loop (tests and benchmarks run servers on several loops)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, GroupWriter] = \
            weakref.WeakKeyDictionary()

    def current(self) -> GroupWriter:
        """The group writer of the running event loop (made on first use; forgotten with its loop)."""
        loop = asyncio.get_running_loop()
        writer = self._by_loop.get(loop)
        if writer is None:
            writer = self._by_loop[loop] = GroupWriter(self._sessions)
        return writer
