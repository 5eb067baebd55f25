"""Group commit of device batches: many requests, one transaction; each answered with its own outcome."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from classmood.benchmarks.servers import tls
from classmood.labels import LABELS
from classmood.server.errors import Conflict, Invalid
from classmood.server.observations.context import Sender
from classmood.server.observations.group_writer import GroupWriter
from classmood.server.observations.models import Observation
from classmood.server.observations.service import Batch, NewObservation, insert_batches
from classmood.server.threaded import ThreadedServer

from .conftest import World, probs_of


def new_items(n: int, ts: float | None = None) -> list[NewObservation]:
    probs = tuple(probs_of("Happy")[label] for label in LABELS)
    return [NewObservation(uuid.uuid4(), ts or time.time() - 1, probs) for _ in range(n)]


def count_rows(app: Any, participant_id: int) -> tuple[int, int]:
    """(rows, distinct client ids) of a participant."""
    with app.state.cm.sessions() as db:
        query = select(func.count(), func.count(func.distinct(Observation.client_id)))
        rows, distinct = db.execute(query.where(Observation.participant_id == participant_id)).one()
        return int(rows), int(distinct)


def test_batches_of_several_participants_in_one_insert(world: World, app: Any) -> None:
    _, bob = world.join("Bob")
    ann = world.participant_id
    shared = new_items(3)
    with app.state.cm.sessions() as db:
        results = insert_batches(db, [Batch(world.session_id, ann, shared), Batch(world.session_id, bob, shared),
                                      Batch(world.session_id, ann, shared[:2] + new_items(1))])
    # Ann's second batch repeats two of her ids in the same statement: the first batch counts them.
    assert [(len(r.inserted), r.duplicates) for r in results] == [(3, 0), (3, 0), (1, 2)]
    assert set(results[0].inserted.values()).isdisjoint(results[1].inserted.values())
    assert count_rows(app, ann) == (4, 4) and count_rows(app, bob) == (3, 3)


def test_one_group_answers_each_batch_on_its_own(world: World, app: Any) -> None:
    state = app.state.cm
    _, bob = world.join("Bob")
    ann = Sender(world.participant_id, world.session_id, "Ann")
    late = Sender(bob, world.session_id, "Bob")
    ghost = Sender(10**6, world.session_id, "nobody")  # no such participant: the group's INSERT fails
    other = world.client.post(f"/api/courses/{world.course_id}/sessions", json={"title": "Not started"},
                              headers=world.teacher_a).json()
    idle = Sender(world.participant_id, other["id"], "Ann")
    good = new_items(2)

    async def group() -> list[Any]:
        writer = GroupWriter(state.sessions)  # the writes queue before its task runs: one group
        return await asyncio.gather(writer.write(ann, good), writer.write(late, new_items(1, ts=1.0)),
                                    writer.write(idle, new_items(1)), writer.write(ghost, new_items(1)),
                                    return_exceptions=True)

    ok, bad_ts, not_live, missing = asyncio.run(group())
    assert not isinstance(ok, BaseException) and set(ok[1].inserted) == {i.client_id for i in good}
    assert isinstance(bad_ts, Invalid) and isinstance(not_live, Conflict)
    assert isinstance(missing, Exception) and not isinstance(missing, Invalid | Conflict)
    assert count_rows(app, world.participant_id) == (2, 2) and count_rows(app, bob) == (0, 0)


def test_only_patient_batches_wait_for_company(world: World, app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # A batch written right after a group waits LINGER_S for company unless it is impatient (a server-analysed
    # frame while nothing waits for analysis): one client sending frame after frame must not be slowed to the
    # writer's pace. LINGER_S is made long so that the difference cannot come from a slow machine.
    monkeypatch.setattr(GroupWriter, "LINGER_S", 3.0)
    ann = Sender(world.participant_id, world.session_id, "Ann")

    async def second_write_s(patient: bool) -> float:
        writer = GroupWriter(app.state.cm.sessions)
        await writer.write(ann, new_items(1))
        started = time.monotonic()
        await writer.write(ann, new_items(1), patient=patient)
        return time.monotonic() - started

    assert asyncio.run(second_write_s(patient=True)) >= 2.5
    assert asyncio.run(second_write_s(patient=False)) < 2.5
    assert count_rows(app, world.participant_id) == (4, 4)


@pytest.mark.parametrize("students", [8])
def test_concurrent_students_and_racing_retries_store_each_score_once(world: World, app: Any,
                                                                      students: int) -> None:
    tokens = [world.join(f"Student {k}") for k in range(students)]
    url_path = f"/api/sessions/{world.session_id}/observations"
    replies: list[tuple[int, int, int]] = []
    lock = threading.Lock()

    def student(headers: dict[str, str], base: str) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=30, verify=tls()) as http:
            for _ in range(5):
                body = {"observations": [{"id": str(uuid.uuid4()), "ts": time.time() - 1, "score": 0.9,
                                          "probs": probs_of("Sad")} for _ in range(3)]}
                for _ in range(2):  # every batch sent twice, the copies racing on two threads
                    got: list[httpx.Response] = []

                    def send(into: list[httpx.Response] = got, payload: dict[str, Any] = body) -> None:
                        into.append(http.post(url_path, json=payload))

                    copies = [threading.Thread(target=send) for _ in range(2)]
                    for t in copies:
                        t.start()
                    for t in copies:
                        t.join()
                    for r in got:
                        assert r.status_code == 200, r.text
                        with lock:
                            replies.append((len(body["observations"]), r.json()["accepted"],
                                            r.json()["duplicates"]))

    with ThreadedServer(app) as server:
        threads = [threading.Thread(target=student, args=(headers, server.url)) for headers, _ in tokens]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert all(accepted + duplicates == sent for sent, accepted, duplicates in replies)
    assert sum(accepted for _, accepted, _ in replies) == students * 5 * 3
    for _, pid in tokens:
        assert count_rows(app, pid) == (15, 15)
