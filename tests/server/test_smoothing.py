"""Steady readings on the live dashboard: the smoothed histogram (``smooth_s``) and each participant's ``now_label``.

Readings are averaged per participant over a short window up to their newest one, in the database; what is
stored stays raw. Runs on a SQLite file and on PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from classmood.config import Settings
from classmood.labels import LABELS
from classmood.server.app import create_app
from classmood.server.web.pages import page_config
from classmood.vision.tracking import DEFAULT_SMOOTH_WINDOW_S

from .conftest import World, arrived_when_seen, build_world, make_settings, probs_of

SMOOTH = 3.0


def send(world: World, header: dict[str, str], items: list[tuple[float, str]], session_id: int | None = None) -> None:
    body = {"observations": [{"id": str(uuid.uuid4()), "ts": ts, "probs": probs_of(label)} for ts, label in items]}
    response = world.client.post(f"/api/sessions/{session_id or world.session_id}/observations", json=body,
                                 headers=header)
    assert response.status_code == 200 and response.json()["accepted"] == len(items), response.text


def counts(**given: int) -> dict[str, int]:
    return {label: given.get(label, 0) for label in LABELS}


@pytest.fixture
def steady(world: World) -> tuple[World, float]:
    """Ann: Sad long ago, then Happy, Happy, Sad within 3 s. Cy: Happy 9-10 s before a Sad (outside the window),
    and a Happy exactly 3 s before it (on the window's open edge). Bob: Neutral."""
    t = time.time() - 5
    send(world, world.student, [(t - 30, "Sad"), (t - 29, "Sad"), (t - 28, "Sad"),
                                (t - 2, "Happy"), (t - 1, "Happy"), (t, "Sad")])
    cy, _ = world.join("Cy")
    send(world, cy, [(t - 10, "Happy"), (t - 9, "Happy"), (t - 3, "Happy"), (t, "Sad")])
    bob, _ = world.join("Bob")
    send(world, bob, [(t - 1, "Neutral")])
    return world, t


def get(world: World, path: str, **params: Any) -> Any:
    response = world.client.get(path, headers=world.teacher_a, params=params)
    assert response.status_code == 200, response.text
    return response.json() if "json" in response.headers["content-type"] else response.text


def test_smoothed_histogram_counts_each_participant_by_their_mean(steady: tuple[World, float]) -> None:
    world, t = steady
    url = f"/api/sessions/{world.session_id}/histogram"
    raw = get(world, url, last_s=60)
    assert raw["counts"] == counts(Happy=5, Sad=5, Neutral=1) and raw["total"] == 11  # unchanged without smooth_s
    smooth = get(world, url, last_s=60, smooth_s=SMOOTH)
    # Ann: two Happy and one Sad in her window -> Happy, her old Sad readings ignored; Cy: only the Sad is newer
    # than 3 s before his newest reading -> Sad; Bob: Neutral. One count per participant.
    assert smooth["counts"] == counts(Happy=1, Sad=1, Neutral=1)
    assert smooth["total"] == 3 and smooth["participants"] == 3 and smooth["suppressed"] is False
    assert smooth["shares"]["Happy"] == pytest.approx(1 / 3)
    # A wider window reaches Cy's older Happy readings; a time range moves each participant's newest reading.
    assert get(world, url, smooth_s=11)["counts"] == counts(Happy=2, Neutral=1)
    assert get(world, url, smooth_s=SMOOTH, until=t)["counts"] == counts(Happy=2, Neutral=1)
    assert get(world, url, smooth_s=SMOOTH, since=t - 0.5)["counts"] == counts(Sad=2)
    empty = get(world, url, smooth_s=SMOOTH, since=t + 1)
    assert empty["total"] == 0 and empty["participants"] == 0


def test_now_label_next_to_the_raw_last_label(steady: tuple[World, float]) -> None:
    world, _ = steady
    rows = {r["display_name"]: r for r in get(world, f"/api/sessions/{world.session_id}/participants")}
    ann, cy, bob = rows["Ann"], rows["Cy"], rows["Bob"]
    assert ann["last_label"] == "Sad" and ann["now_label"] == "Happy"
    happy, rest = probs_of("Happy")["Happy"], probs_of("Happy")["Sad"]
    assert ann["now_probs"]["Happy"] == pytest.approx((2 * happy + rest) / 3)
    assert ann["now_probs"]["Sad"] == pytest.approx((2 * rest + happy) / 3)
    assert set(ann["now_probs"]) == set(LABELS) and sum(ann["now_probs"].values()) == pytest.approx(1)
    assert ann["observations"] == 6 and ann["counts"] == counts(Happy=2, Sad=4)  # counts stay raw
    assert cy["last_label"] == cy["now_label"] == "Sad" and cy["now_probs"]["Sad"] == pytest.approx(0.7)
    assert bob["now_label"] == "Neutral"
    world.join("Dee")
    rows = {r["display_name"]: r for r in get(world, f"/api/sessions/{world.session_id}/participants")}
    assert rows["Dee"]["now_label"] is None and rows["Dee"]["now_probs"] is None


def test_stored_observations_stay_raw(steady: tuple[World, float]) -> None:
    world, t = steady
    get(world, f"/api/sessions/{world.session_id}/histogram", smooth_s=SMOOTH)
    get(world, f"/api/sessions/{world.session_id}/participants")
    rows = list(csv.DictReader(io.StringIO(get(world, f"/api/sessions/{world.session_id}/export.csv"))))
    ann = [(float(r["ts"]), r["label"], float(r["p_happy"])) for r in rows if r["display_name"] == "Ann"]
    expected = [(t - 30, "Sad"), (t - 29, "Sad"), (t - 28, "Sad"), (t - 2, "Happy"), (t - 1, "Happy"), (t, "Sad")]
    assert [(pytest.approx(ts), label) for ts, label in expected] == [(ts, label) for ts, label, _ in ann]
    assert [p for *_, p in ann] == pytest.approx([probs_of(label)["Happy"] for _, label in expected])
    assert len(rows) == 11


@pytest.mark.parametrize("bad", ["0", "-1", "3600.5", "nan", "inf", "-inf", "soon"])
def test_smooth_s_is_validated(world: World, bad: str) -> None:
    response = world.client.get(f"/api/sessions/{world.session_id}/histogram", headers=world.teacher_a,
                                params={"smooth_s": bad})
    assert response.status_code == 422, response.text
    assert world.client.get(f"/api/sessions/{world.session_id}/histogram", headers=world.teacher_a,
                            params={"smooth_s": 3600}).status_code == 200


def test_aggregate_only_suppresses_and_refuses(world: World, app: Any) -> None:
    created = world.client.post(f"/api/courses/{world.course_id}/sessions", headers=world.teacher_a,
                                json={"title": "Quiet", "aggregate_only": True}).json()
    sid = created["id"]
    world.client.post(f"/api/sessions/{sid}/start", headers=world.teacher_a)
    t = (time.time() - 65) // 60 * 60 + 1.5  # inside one minute cell (the test settings' cell), already over
    people = [world.join(f"Hidden{k}", code=created["code"]) for k in range(3)]
    for header, _ in people[:2]:
        send(world, header, [(t - 1, "Disgust"), (t, "Disgust")], session_id=sid)
    arrived_when_seen(app, sid)
    url = f"/api/sessions/{sid}/histogram"
    small = get(world, url, smooth_s=SMOOTH)
    assert small == {"counts": {}, "shares": {}, "total": 0, "participants": 0, "suppressed": True}
    single = world.client.get(url, headers=world.teacher_a, params={"smooth_s": SMOOTH,
                                                                    "participant_id": people[0][1]})
    assert single.status_code == 403
    assert world.client.get(f"/api/sessions/{sid}/participants", headers=world.teacher_a).status_code == 403
    send(world, people[2][0], [(t, "Happy")], session_id=sid)
    arrived_when_seen(app, sid)
    shown = get(world, url, smooth_s=SMOOTH)  # three participants in the cell reach min_faces=3
    assert shown["suppressed"] is False and shown["counts"] == counts(Disgust=2, Happy=1)
    # A range takes every whole cell it overlaps: no narrower range isolates anyone.
    assert get(world, url, smooth_s=SMOOTH, since=t - 0.5) == shown
    assert get(world, url, smooth_s=SMOOTH, until=t) == shown


@pytest.fixture
def raw_world(database_url: str, tmp_path: Path) -> Iterator[World]:
    """A world whose server does not smooth (``smooth_window_s`` 0)."""
    application = create_app(make_settings(database_url, tmp_path / "raw", smooth_window_s=0))
    with TestClient(application) as client:
        yield build_world(client, application)
    application.state.cm.engine.dispose()


def test_window_zero_is_the_raw_reading(raw_world: World) -> None:
    t = time.time() - 5
    send(raw_world, raw_world.student, [(t - 2, "Happy"), (t - 1, "Happy"), (t, "Sad")])
    [ann] = get(raw_world, f"/api/sessions/{raw_world.session_id}/participants")
    assert ann["last_label"] == ann["now_label"] == "Sad" and ann["now_probs"] == pytest.approx(probs_of("Sad"))


def test_the_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert Settings().smooth_window_s == DEFAULT_SMOOTH_WINDOW_S
    monkeypatch.setenv("CLASSMOOD_SMOOTH_WINDOW_S", "0")
    assert Settings().smooth_window_s == 0
    assert page_config(Settings(smooth_window_s=5))["smooth_window_s"] == 5
    for bad in ("-1", "3601", "nan"):
        monkeypatch.setenv("CLASSMOOD_SMOOTH_WINDOW_S", bad)
        with pytest.raises(ValueError, match="smooth_window_s"):
            Settings()
