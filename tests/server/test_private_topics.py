"""Aggregate-only topics are sums of released cells, and every per-student route answers 403.

The layout is test_private_cells's: an aggregate-only session whose first minute holds three students (Happy,
Neutral), its second one student alone (Fear), its third two (Sad). Topics are cut anywhere through it.
"""

from __future__ import annotations

import itertools
from typing import Any

from classmood.labels import LABELS

from .conftest import World
from .lesson import get, started_at
from .test_private_cells import HIDDEN, counts_in, layout  # noqa: F401  (layout is a fixture)

Layout = tuple[World, int, float, dict[str, int]]


def test_topics_are_sums_of_released_cells(layout: Layout, app: Any) -> None:  # noqa: F811
    world, sid, m0, first_minute = layout
    started_at(app, sid, m0 - 30)
    url = f"/api/sessions/{sid}/topics"
    zero = dict.fromkeys(LABELS, 0)
    starts = [m0 - 30 + 7.5 * k for k in range(28)]
    for a, b in itertools.combinations(starts[::3], 2):
        made = [world.client.post(url, json={"title": f"T{k}", "start": s}, headers=world.teacher_a).json()
                for k, s in enumerate((a, b))]
        topics = get(world, url)
        summary = get(world, f"{url}/summary")
        for answer in (topics, summary):
            for counts in counts_in(answer):
                assert all(counts.get(label, 0) == 0 for label in HIDDEN), (a, b, counts)
        for topic in topics:
            histogram = topic["histogram"]
            # All of the first minute or nothing: any sum or difference of topic answers stays a sum of cells.
            assert (histogram["counts"] or zero) in (first_minute, zero), (a, b, histogram)
            assert histogram["suppressed"] == (histogram["total"] == 0)
        for row in summary["topics"]:
            if row["too_few_students"]:
                assert row["students"] is None and row["observations"] is None and row["shares"] == {}
                assert row["negative_share"] is None and row["sentence"] is None
            else:
                assert row["observations"] == sum(first_minute.values()) and row["students"] >= 3
            assert row["present"] is None and row["faces_in_view"] is None
        for topic in made:
            assert world.client.delete(f"{url}/{topic['id']}", headers=world.teacher_a).status_code == 204


def per_student_routes(sid: int, pid: int) -> list[tuple[str, str]]:
    """Every per-student route of a session (teacher side) and the student's own."""
    return [("GET", f"/api/sessions/{sid}/participants"),
            ("GET", f"/api/sessions/{sid}/participants/{pid}/timeline"),
            ("GET", f"/api/sessions/{sid}/check-on"),
            ("GET", f"/api/sessions/{sid}/participants.csv"),
            ("GET", f"/api/sessions/{sid}/export.csv"),
            ("GET", f"/api/sessions/{sid}/histogram?participant_id={pid}"),
            ("GET", f"/api/sessions/{sid}/timeline?participant_id={pid}")]


def test_every_per_student_route_is_refused(layout: Layout) -> None:  # noqa: F811
    world, sid, _, _ = layout
    code = get(world, f"/api/sessions/{sid}")["code"]
    header, pid = world.join("Dee", code=code)
    for method, path in per_student_routes(sid, pid):
        for who in (world.teacher_a, world.admin):
            response = world.client.request(method, path, headers=who)
            assert response.status_code == 403, (path, response.text)
            assert "aggregate-only" in response.json()["detail"]
    own = world.client.get("/api/me/timeline", headers=header)
    assert own.status_code == 403 and "aggregate-only" in own.json()["detail"]
