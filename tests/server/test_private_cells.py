"""Aggregate-only figures are sums of sealed, big-enough cells: no range, bucket or difference isolates a person.

The layout (minute cells, as in the test settings): a public session next to an aggregate-only one whose
first minute holds three students (Happy and Neutral), whose second minute holds one student alone (Fear)
and whose third minute holds two (Sad). Fear and Sad belong to groups below ``min_faces=3``: no answer may
ever carry them, and every answer about the private session is either nothing or exactly its first minute.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from classmood.labels import LABELS
from classmood.server.app import create_app

from .conftest import World, arrived_when_seen, build_world, make_settings, probs_of

HIDDEN = ("Fear", "Sad")  # the emotions of the groups too small to be shown


def send(world: World, header: dict[str, str], sid: int, items: list[tuple[float, str]]) -> None:
    body = {"observations": [{"id": str(uuid.uuid4()), "ts": ts, "probs": probs_of(label)} for ts, label in items]}
    response = world.client.post(f"/api/sessions/{sid}/observations", json=body, headers=header)
    assert response.status_code == 200 and response.json()["accepted"] == len(items), response.text


def private_session(world: World, title: str = "Quiet") -> tuple[int, str]:
    created = world.client.post(f"/api/courses/{world.course_id}/sessions", headers=world.teacher_a,
                                json={"title": title, "aggregate_only": True}).json()
    assert world.client.post(f"/api/sessions/{created['id']}/start", headers=world.teacher_a).status_code == 200
    return created["id"], created["code"]


@pytest.fixture
def layout(world: World, app: Any) -> tuple[World, int, float, dict[str, int]]:
    """The private session of the module docstring; returns (world, its id, first minute, that minute's counts)."""
    send(world, world.student, world.session_id, [(time.time() - 1, "Surprise")])  # the public session
    sid, code = private_session(world)
    m0 = (time.time() - 240) // 60 * 60  # three whole minutes, all over (and sealed) by now
    group = [world.join(f"Hidden{k}", code=code)[0] for k in range(3)]
    for k, header in enumerate(group):
        send(world, header, sid, [(m0 + 5 + k, "Happy"), (m0 + 30 + k, "Neutral" if k else "Happy")])
    loner = world.join("Loner", code=code)[0]
    send(world, loner, sid, [(m0 + 61, "Fear"), (m0 + 62, "Fear")])
    for header in group[:2]:
        send(world, header, sid, [(m0 + 125, "Sad")])
    arrived_when_seen(app, sid)
    return world, sid, m0, {**dict.fromkeys(LABELS, 0), "Happy": 4, "Neutral": 2}


def counts_in(answer: Any) -> Iterator[dict[str, int]]:
    """Every ``counts`` object anywhere in a JSON answer."""
    if isinstance(answer, dict):
        if isinstance(answer.get("counts"), dict):
            yield answer["counts"]
        for value in answer.values():
            yield from counts_in(value)
    elif isinstance(answer, list):
        for item in answer:
            yield from counts_in(item)


def ranges(m0: float) -> Iterator[dict[str, float]]:
    """since/until pairs cutting through, between and around the three cells."""
    edges = [m0 - 30 + 7.5 * k for k in range(30)]
    yield {}
    for since in edges:
        yield {"since": since}
        yield {"until": since + 0.5}
        yield {"since": since, "until": since + 7.5}


def test_no_range_bucket_or_total_shows_a_small_group(layout: tuple[World, int, float, dict[str, int]]) -> None:
    world, sid, m0, first_minute = layout
    session_answers: list[dict[str, int]] = []
    for params in ranges(m0):
        for extra in ({}, {"smooth_s": 3}):
            answer = world.client.get(f"/api/sessions/{sid}/histogram", headers=world.teacher_a,
                                      params={**params, **extra}).json()
            assert not answer["suppressed"] or answer["total"] == 0
            if not extra:
                session_answers.append(answer["counts"] or dict.fromkeys(LABELS, 0))
        for bucket_s in (1, 7, 60, 90, 3600):
            timeline = world.client.get(f"/api/sessions/{sid}/timeline", headers=world.teacher_a,
                                        params={**params, "bucket_s": bucket_s})
            assert timeline.status_code == 200, timeline.text
            assert timeline.json()["bucket_s"] % 60 == 0  # whole cells
            for counts in counts_in(timeline.json()):
                assert all(counts.get(label, 0) == 0 for label in HIDDEN), (params, bucket_s, counts)
        for path in (f"/api/courses/{world.course_id}/histogram", f"/api/teachers/{world.teacher_a_id}/histogram",
                     "/api/platform/histogram"):
            total = world.client.get(path, headers=world.admin, params=params).json()
            assert all(total["counts"].get(label, 0) == 0 for label in HIDDEN), (path, params)
    # Every answer about the private session is all of its first minute or nothing: differences of answers
    # are the same two values, so subtraction cannot reach the loner's minute or the pair's.
    assert {tuple(sorted(c.items())) for c in session_answers} == {
        tuple(sorted(first_minute.items())), tuple(sorted(dict.fromkeys(LABELS, 0).items()))}
    for offset in (0, 37, 1800, -2700):
        overview = world.client.get("/api/platform/overview", headers=world.admin,
                                    params={"utc_offset_s": offset}).json()
        for counts in counts_in(overview):
            assert all(counts.get(label, 0) == 0 for label in HIDDEN), (offset, counts)
        assert sum(h["total"] for h in overview["hours"]) == 1 + sum(first_minute.values())


@pytest.fixture
def fast_cells(database_url: str, tmp_path: Path) -> Iterator[tuple[World, int]]:
    """A world whose aggregate-only cells are 3 s wide and sealed 0.5 s after they end."""
    application = create_app(make_settings(database_url, tmp_path / "data", private_cell_s=3, private_seal_s=0.5))
    with TestClient(application) as client:
        yield build_world(client, application), 3
    application.state.cm.engine.dispose()


def until_cell_starts(cell_s: int) -> float:
    """Wait for the start of a fresh cell (so that a few requests land in one cell) and return it."""
    while time.time() % cell_s > 0.2:
        time.sleep(0.05)
    return time.time() // cell_s * cell_s


def test_cells_show_once_sealed_and_never_change(fast_cells: tuple[World, int]) -> None:
    """In real time, no arrival faked: a cell shows only once sealed, and a late replay cannot alter it."""
    world, cell_s = fast_cells
    sid, code = private_session(world)
    group = [world.join(f"Hidden{k}", code=code)[0] for k in range(3)]
    loner = world.join("Loner", code=code)[0]
    url = f"/api/sessions/{sid}/histogram"
    start = until_cell_starts(cell_s)
    for header in group:
        send(world, header, sid, [(time.time(), "Happy")])
    assert time.time() < start + cell_s, "the machine was too slow to send three scores within one cell"
    open_cell = world.client.get(url, headers=world.teacher_a).json()
    if time.time() < start + cell_s + 0.5:  # answered before the seal (always, unless the machine stalled)
        assert open_cell["suppressed"] is True
    time.sleep(max(0.0, start + cell_s + 0.5 + 0.3 - time.time()))
    shown = world.client.get(url, headers=world.teacher_a).json()
    assert shown["suppressed"] is False and shown["counts"]["Happy"] == 3 and shown["participants"] == 3
    # The loner's outbox replays a score seen in the released cell: it lands, stored, in the open cell, alone.
    send(world, loner, sid, [(start + 1, "Fear")])
    assert world.client.get(url, headers=world.teacher_a).json() == shown
    time.sleep(max(0.0, (time.time() // cell_s + 1) * cell_s + 0.5 + 0.3 - time.time()))
    assert world.client.get(url, headers=world.teacher_a).json() == shown
    assert world.client.post(f"/api/sessions/{sid}/end", headers=world.teacher_a).status_code == 200
    assert world.client.get(url, headers=world.teacher_a).json() == shown
    course = world.client.get(f"/api/courses/{world.course_id}/histogram", headers=world.teacher_a).json()
    assert course["counts"]["Fear"] == 0 and course["counts"]["Happy"] == 3
