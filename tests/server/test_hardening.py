"""Bad input of every class gets a clear 4xx, the same on SQLite and PostgreSQL, and nothing is stored.

Non-finite numbers, lone surrogates, NUL characters, ids outside the database's integer range, blank
titles; error answers in their documented shapes; ``created_at`` always with its time zone.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from classmood.labels import LABELS

from .conftest import World, probs_of

JSON = {"Content-Type": "application/json"}
NON_FINITE = ("NaN", "Infinity", "-Infinity", "1e400")


def raw(world: World, method: str, path: str, text: str, headers: dict[str, str] | None = None) -> Any:
    """Send ``text`` as a JSON body exactly as written (json.dumps would refuse NaN and lone surrogates)."""
    return world.client.request(method, path, content=text.encode("utf-8", "surrogatepass"),
                                headers={**JSON, **(headers or {})})


def assert_422(response: Any) -> list[dict[str, Any]]:
    """A 422 whose body is valid UTF-8 JSON with a list ``detail``."""
    assert response.status_code == 422, (response.status_code, response.text)
    detail = json.loads(response.content.decode("utf-8"))["detail"]
    assert isinstance(detail, list) and detail and all("msg" in d and "loc" in d for d in detail), detail
    return detail


def stored(world: World) -> int:
    return int(world.client.get(f"/api/sessions/{world.session_id}/histogram", headers=world.teacher_a).json()["total"])


@pytest.mark.parametrize("number", NON_FINITE)
def test_non_finite_numbers_are_422_everywhere(world: World, number: str) -> None:
    probs = json.dumps(probs_of("Happy"))
    now = time.time()
    one_bad = ", ".join(f'"{label}": {number if label == "Happy" else 0.1}' for label in LABELS)
    batches = [
        f'{{"observations": [{{"id": "{uuid.uuid4()}", "ts": {number}, "probs": {probs}}}]}}',
        f'{{"observations": [{{"id": "{uuid.uuid4()}", "ts": {now}, "probs": {probs}, "score": {number}}}]}}',
        f'{{"observations": [{{"id": "{uuid.uuid4()}", "ts": {now}, "probs": {{{one_bad}}}}}]}}',
    ]
    for body in batches:
        assert_422(raw(world, "POST", f"/api/sessions/{world.session_id}/observations", body, world.student))
    assert_422(raw(world, "POST", f"/api/courses/{world.course_id}/sessions",
                   f'{{"title": "t", "frame_interval_s": {number}}}', world.teacher_a))
    assert_422(raw(world, "PATCH", f"/api/sessions/{world.session_id}", f'{{"frame_interval_s": {number}}}',
                   world.teacher_a))
    assert stored(world) == 0


TEXT_ROUTES = [
    ("POST", "/api/join", '{{"code": "{code}", "display_name": "{bad}", "consent": true}}', None),
    ("POST", "/api/join", '{{"code": "{bad}", "display_name": "Ann", "consent": true}}', None),
    ("POST", "/api/auth/login", '{{"email": "a{bad}@test.org", "password": "x"}}', None),
    ("POST", "/api/auth/token", '{{"email": "a@test.org", "password": "{bad}"}}', None),
    ("POST", "/api/courses", '{{"title": "Bio{bad}logy"}}', "teacher_a"),
    ("POST", "/api/courses/{course}/sessions", '{{"title": "Cells{bad}"}}', "teacher_a"),
    ("PATCH", "/api/sessions/{session}", '{{"title": "Cells{bad}"}}', "teacher_a"),
    ("POST", "/api/users", '{{"email": "n@test.org", "password": "long enough", "name": "N{bad}"}}', "admin"),
]


@pytest.mark.parametrize("bad", ["\\u0000", "\\ud800", "\\udfff"], ids=["nul", "high-surrogate", "low-surrogate"])
@pytest.mark.parametrize(("method", "path", "body", "who"), TEXT_ROUTES,
                         ids=[f"{m} {p} {i}" for i, (m, p, _, _) in enumerate(TEXT_ROUTES)])
def test_nul_and_lone_surrogates_are_422_on_both_databases(world: World, bad: str, method: str, path: str,
                                                           body: str, who: str | None) -> None:
    headers = getattr(world, who) if who else None
    url = path.format(course=world.course_id, session=world.session_id)
    assert_422(raw(world, method, url, body.format(bad=bad, code=world.code), headers))
    # nothing was stored: no course, session, user or participant holds the bad text
    assert [c["title"] for c in world.client.get("/api/courses", headers=world.admin).json()] == ["Biology"]
    titles = [s["title"] for s in world.client.get(f"/api/courses/{world.course_id}/sessions",
                                                   headers=world.admin).json()]
    assert titles == ["Cells"]
    assert len(world.client.get("/api/users", headers=world.admin).json()) == 3


def test_nul_in_path_and_query_is_refused(world: World) -> None:
    assert world.client.get("/api/join/AB%00CD").status_code == 404
    assert world.client.get(f"/api/join/{world.code}%00").status_code == 404
    assert_422(world.client.get(f"/api/sessions/{world.session_id}/histogram?since=1%00",
                                headers=world.teacher_a))


OUT_OF_RANGE = [str(2**31), str(2**63), "7946247611927299620864", str(-(2**31) - 1), "9" * 5000]


def _id_routes(world: World) -> list[tuple[str, str]]:
    """Every API operation with an ``..._id`` path parameter, as (method, path template)."""
    paths = world.client.get("/openapi.json").json()["paths"]
    routes = [(method.upper(), path) for path, ops in paths.items() if "_id}" in path for method in ops]
    assert len(routes) >= 15
    return routes


@pytest.mark.parametrize("big", OUT_OF_RANGE, ids=["2^31", "2^63", "2^72", "-2^31-1", "5000-digits"])
def test_ids_outside_the_integer_range_are_404(world: World, big: str) -> None:
    for who in (world.admin, world.teacher_a, world.student):
        for method, template in _id_routes(world):
            path = template
            for name in ("session_id", "course_id", "teacher_id", "participant_id"):
                path = path.replace("{" + name + "}", big)
            body = {"json": {}} if method in ("POST", "PATCH") else {}
            response = world.client.request(method, path, headers=who, **body)
            assert response.status_code == 404, (method, path, response.status_code, response.text)


@pytest.mark.parametrize("big", [2**31, 1099511627776, 2**63], ids=["2^31", "2^40", "2^63"])
def test_query_ids_outside_the_range_are_422_and_export_never_breaks(world: World, big: int) -> None:
    base = f"/api/sessions/{world.session_id}"
    for route in ("export.csv", "histogram", "timeline", "participants"):
        assert_422(world.client.get(f"{base}/{route}?participant_id={big}", headers=world.teacher_a))
    # the largest valid id: a complete, empty CSV (header only), never a stream cut halfway
    with world.client.stream("GET", f"{base}/export.csv?participant_id={2**31 - 1}",
                             headers=world.teacher_a) as response:
        assert response.status_code == 200
        text = b"".join(response.iter_bytes()).decode()
    assert len(text.splitlines()) == 1 and text.endswith("\n")  # the header line, complete


@pytest.mark.parametrize("title", ["", " ", "   \t  ", "\n"])
def test_blank_titles_and_names_are_422(world: World, title: str) -> None:
    for method, path in (("POST", "/api/courses"), ("POST", f"/api/courses/{world.course_id}/sessions"),
                         ("PATCH", f"/api/sessions/{world.session_id}")):
        assert_422(world.client.request(method, path, json={"title": title}, headers=world.teacher_a))
    assert_422(world.client.post("/api/users", json={"email": "z@test.org", "password": "long enough",
                                                     "name": title}, headers=world.admin))
    assert_422(world.client.post("/api/join", json={"code": world.code, "display_name": title, "consent": True}))


def test_titles_are_trimmed(world: World) -> None:
    course = world.client.post("/api/courses", json={"title": "  Chemistry  "}, headers=world.teacher_a).json()
    assert course["title"] == "Chemistry"


def test_created_at_carries_its_time_zone_in_every_answer(world: World) -> None:
    created = world.client.post("/api/courses", json={"title": "Chemistry"}, headers=world.teacher_a).json()
    listed = world.client.get("/api/courses", headers=world.teacher_a).json()
    one = world.client.get(f"/api/courses/{created['id']}", headers=world.teacher_a).json()
    for stamp in [created["created_at"], one["created_at"], *(c["created_at"] for c in listed)]:
        assert stamp.endswith("Z"), stamp


def test_domain_422_answers_carry_a_list_detail(world: World) -> None:
    # raised by a service (until before since), not by request validation
    assert_422(world.client.get(f"/api/sessions/{world.session_id}/histogram?since=100&until=50",
                                headers=world.teacher_a))


def test_error_answers_and_csv_are_in_the_openapi_document(world: World) -> None:
    document = world.client.get("/openapi.json").json()
    operations = [op for ops in document["paths"].values() for op in ops.values()]
    for operation in operations:
        assert {"400", "401", "403", "404", "409", "413", "415", "422", "429"} <= set(operation["responses"])
        assert "Retry-After" in operation["responses"]["429"]["headers"]
    export = document["paths"]["/api/sessions/{session_id}/export.csv"]["get"]["responses"]["200"]["content"]
    assert list(export) == ["text/csv"]
    assert document["components"]["schemas"]["HTTPValidationError"]["properties"]["detail"]["type"] == "array"


def test_credentials_with_any_bytes_are_refused_not_crashed(world: World) -> None:
    client = world.client
    for token in (b"\xe9.\xe9", b"abc.d\xe9f", b"\xff\xfe", "ä.ö".encode()):
        response = client.get("/api/me", headers={"Authorization": b"Bearer " + token})
        assert response.status_code == 401, (token, response.status_code)
        assert client.get("/api/me", headers={"Cookie": b"cm_session=" + token}).status_code == 401
    login = client.post("/api/auth/login", json={"email": "a@test.org", "password": "correct horse"})
    assert login.status_code == 200
    forged = client.post("/api/courses", json={"title": "Chem"}, headers={"X-CSRF-Token": b"\xe9t\xe9"})
    assert forged.status_code == 403


@pytest.mark.parametrize("depth", [20, 500, 950, 5000])
def test_deeply_nested_bodies_are_refused_not_crashed(world: World, depth: int) -> None:
    nested = "[" * depth + "]" * depth
    for path, body, who in (("/api/courses", f'{{"title": {nested}}}', world.teacher_a),
                            ("/api/join", f'{{"code": "x", "display_name": {nested}, "consent": true}}', None)):
        response = raw(world, "POST", path, body, who)
        assert response.status_code in (400, 422), (depth, response.status_code)
        json.loads(response.content)  # a well-formed answer, whatever was echoed
