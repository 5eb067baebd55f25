"""Bad input of every class gets a clear 4xx, the same on SQLite and PostgreSQL, and nothing is stored.

Non-finite numbers, lone surrogates, NUL characters, ids outside the database's integer range, blank
titles; times out of range on every route; lax types and unknown fields; score batches over the byte limit on
either transport; logout by cookie without its CSRF token; error answers in their documented shapes;
``created_at`` always with its time zone.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from classmood.labels import LABELS
from classmood.server.app import create_app
from classmood.server.validation import TIME_MAX_S

from .conftest import SchemaPool, World, build_world, make_settings, pg_url, probs_of

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


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def refusing(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One world per database for the tests whose every request must be refused (and each of which checks that
    nothing was stored): the many cases of one test need not build a platform each (as ``world`` does)."""
    tmp = tmp_path_factory.mktemp(f"refusing-{request.param}")
    schema, pool = "", None
    if request.param == "sqlite":
        shutil.copyfile(request.getfixturevalue("sqlite_template"), tmp / "classmood.db")
        url = f"sqlite:///{tmp / 'classmood.db'}"
    else:
        pool = request.getfixturevalue("pg_schemas")
        assert isinstance(pool, SchemaPool)
        schema = pool.take()
        url = pg_url(schema)
    application = create_app(make_settings(url, tmp / "data"))
    try:
        with TestClient(application) as client:
            yield build_world(client, application)
    finally:
        application.state.cm.engine.dispose()
        if pool is not None:
            pool.give_back(schema)


@pytest.mark.parametrize("number", NON_FINITE)
def test_non_finite_numbers_are_422_everywhere(refusing: World, number: str) -> None:
    world = refusing
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
def test_nul_and_lone_surrogates_are_422_on_both_databases(refusing: World, bad: str, method: str, path: str,
                                                           body: str, who: str | None) -> None:
    world = refusing
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
def test_ids_outside_the_integer_range_are_404(refusing: World, big: str) -> None:
    world = refusing
    for who in (world.admin, world.teacher_a, world.student):
        for method, template in _id_routes(world):
            path = template
            for name in ("session_id", "course_id", "teacher_id", "participant_id"):
                path = path.replace("{" + name + "}", big)
            body = {"json": {}} if method in ("POST", "PATCH") else {}
            response = world.client.request(method, path, headers=who, **body)
            assert response.status_code == 404, (method, path, response.status_code, response.text)


@pytest.mark.parametrize("big", [2**31, 1099511627776, 2**63], ids=["2^31", "2^40", "2^63"])
def test_query_ids_outside_the_range_are_422_and_export_never_breaks(refusing: World, big: int) -> None:
    world = refusing
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
def test_blank_titles_and_names_are_422(refusing: World, title: str) -> None:
    world = refusing
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
def test_deeply_nested_bodies_are_refused_not_crashed(refusing: World, depth: int) -> None:
    world = refusing
    nested = "[" * depth + "]" * depth
    for path, body, who in (("/api/courses", f'{{"title": {nested}}}', world.teacher_a),
                            ("/api/join", f'{{"code": "x", "display_name": {nested}, "consent": true}}', None)):
        response = raw(world, "POST", path, body, who)
        assert response.status_code in (400, 422), (depth, response.status_code)
        json.loads(response.content)  # a well-formed answer, whatever was echoed


# --- times: one range, everywhere (issue 25) ---------------------------------------------------------------

BAD_TIMES = [{"since": "-inf"}, {"since": "1e308"}, {"since": "nan"}, {"until": "1e308"}, {"until": "inf"},
             {"until": "8.67e307", "last_s": "8.67e307"}, {"last_s": "1e308"}, {"last_s": "nan"}, {"since": "-1"},
             {"until": str(TIME_MAX_S * 10)}]


def _time_routes(world: World) -> list[str]:
    s = world.session_id
    return [f"/api/sessions/{s}/histogram", f"/api/sessions/{s}/timeline", f"/api/sessions/{s}/participants",
            f"/api/sessions/{s}/export.csv", f"/api/courses/{world.course_id}/histogram",
            f"/api/teachers/{world.teacher_a_id}/histogram", "/api/platform/histogram", "/api/platform/overview"]


@pytest.mark.parametrize("aggregate_only", [False, True], ids=["open", "aggregate-only"])
def test_times_out_of_range_are_422_on_every_analytics_route(world: World, aggregate_only: bool) -> None:
    if aggregate_only:  # its figures go through the cell arithmetic that once overflowed
        world.client.patch(f"/api/sessions/{world.session_id}", json={"aggregate_only": True}, headers=world.teacher_a)
    body = {"observations": [{"id": str(uuid.uuid4()), "ts": time.time(), "probs": probs_of("Happy")}]}
    assert world.client.post(f"/api/sessions/{world.session_id}/observations", json=body,
                             headers=world.student).status_code == 200
    for path in _time_routes(world):
        for params in BAD_TIMES:
            detail = assert_422(world.client.get(path, params=params, headers=world.admin))
            assert detail[0]["loc"][0] == "query", (path, params, detail)
        # the edges of the range are answered, never a 5xx
        edges = world.client.get(path, params={"since": 0, "until": TIME_MAX_S, "last_s": TIME_MAX_S},
                                 headers=world.admin)
        assert edges.status_code < 500, (path, edges.status_code, edges.text)
    histogram = world.client.get(f"/api/sessions/{world.session_id}/histogram",
                                 params={"since": 0, "until": TIME_MAX_S}, headers=world.admin)
    assert histogram.status_code == 200


def test_frame_and_score_times_out_of_range_are_422(world: World, astronaut_jpeg: bytes) -> None:
    frames = f"/api/sessions/{world.session_id}/frames"
    for ts in ("1e308", "-inf", "nan", "-1"):
        assert_422(world.client.post(frames, params={"ts": ts}, content=astronaut_jpeg,
                                     headers={**world.student, "Content-Type": "image/jpeg"}))
        assert_422(raw(world, "POST", f"/api/sessions/{world.session_id}/observations",
                       f'{{"observations": [{{"id": "{uuid.uuid4()}", "ts": {ts if ts != "nan" else "NaN"}, '
                       f'"probs": {json.dumps(probs_of("Happy"))}}}]}}', world.student))
    token = world.student["Authorization"].split()[1]
    with world.client.websocket_connect(f"/api/sessions/{world.session_id}/stream?token={token}") as ws:
        for ts in (1e308, -1.0, True, "now"):
            ws.send_text(json.dumps({"id": str(uuid.uuid4()), "ts": ts, "image": "AAAA"}))
            reply = ws.receive_json()
            assert reply["type"] == "error" and reply["status"] == 422, reply
    assert stored(world) == 0


# --- strict types and closed shapes -------------------------------------------------------------------------

STRICT_BODIES = [
    ("POST", "/api/courses/{course}/sessions", {"title": "t", "allow_server_fallback": 0}),
    ("POST", "/api/courses/{course}/sessions", {"title": "t", "aggregate_only": "true"}),
    ("POST", "/api/courses/{course}/sessions", {"title": "t", "frame_interval_s": "2"}),
    ("POST", "/api/courses/{course}/sessions", {"title": 5}),
    ("PATCH", "/api/sessions/{session}", {"show_self_to_students": 1}),
    ("PATCH", "/api/sessions/{session}", {"allow_server_fallback": 0}),
    ("POST", "/api/courses", {"title": "Chem", "teacher_id": 3}),
    ("PATCH", "/api/sessions/{session}", {"title": "t", "status": "ended"}),
    ("POST", "/api/users", {"email": "n@test.org", "password": "long enough", "name": "N", "is_active": True}),
    ("POST", "/api/users", {"email": "n@test.org", "password": 12345678, "name": "N"}),
]


@pytest.mark.parametrize(("method", "path", "body"), STRICT_BODIES,
                         ids=[f"{m} {p} {list(b)[-1]}" for m, p, b in STRICT_BODIES])
def test_no_lax_types_and_no_unknown_fields(refusing: World, method: str, path: str, body: dict[str, Any]) -> None:
    world = refusing
    who = world.admin if path == "/api/users" else world.teacher_a
    url = path.format(course=world.course_id, session=world.session_id)
    assert_422(world.client.request(method, url, json=body, headers=who))
    session = world.client.get(f"/api/sessions/{world.session_id}", headers=world.teacher_a).json()
    assert session["status"] == "live" and session["allow_server_fallback"] is False  # nothing changed


def test_strict_types_still_take_what_the_pages_send(world: World) -> None:
    created = world.client.post(f"/api/courses/{world.course_id}/sessions", headers=world.teacher_a, json={
        "title": "t", "frame_interval_s": 2, "allow_server_fallback": True,
        "scheduled_at": "2030-01-01T08:00:00Z"})  # an integer is a number; a time is ISO text
    assert created.status_code == 201, created.text
    assert created.json()["frame_interval_s"] == 2.0 and created.json()["scheduled_at"].startswith("2030-01-01")
    assert world.client.post("/api/join", json={"code": world.code, "display_name": "Bo", "consent": 1}
                             ).status_code == 422


def _batch(extra_item: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    item = {"id": str(uuid.uuid4()), "ts": time.time(), "probs": probs_of("Happy"), "score": 0.9, **(extra_item or {})}
    return {"observations": [item], **extra}


@pytest.mark.parametrize("body", [
    _batch(no_such_field=1), _batch({"blob": "x" * 2048}), _batch({"ts": "1700000000"}), _batch({"score": "0.9"}),
    _batch({"probs": {k: str(v) for k, v in probs_of("Happy").items()}}), _batch({"id": 5}),
], ids=["unknown-top", "unknown-item", "ts-text", "score-text", "probs-text", "id-number"])
def test_score_batches_refuse_unknown_fields_and_lax_types_on_both_transports(refusing: World,
                                                                            body: dict[str, Any]) -> None:
    world = refusing
    assert_422(world.client.post(f"/api/sessions/{world.session_id}/observations", json=body, headers=world.student))
    token = world.student["Authorization"].split()[1]
    with world.client.websocket_connect(f"/api/sessions/{world.session_id}/stream?token={token}") as ws:
        ws.send_text(json.dumps({"type": "scores", "batch": "b1", **body}))
        reply = ws.receive_json()
    assert reply["type"] == "error" and reply["status"] == 422 and reply["batch"] == "b1", reply
    assert isinstance(reply["detail"], list)
    assert stored(world) == 0


def test_one_byte_limit_per_score_batch_on_both_transports(world: World) -> None:
    from classmood.server.observations.limits import batch_body_limit

    limit = batch_body_limit(world.client.app.state.cm.settings)  # type: ignore[attr-defined]
    # the issue's probe: few enough observations, each with an unknown 2 KB field, past the byte limit
    padded = {"observations": [{**_batch()["observations"][0], "id": str(uuid.uuid4()), "blob": "x" * 2048}
                               for _ in range(limit // 2000)]}
    # and a valid batch made large by whitespace alone: the bytes count, not the content
    spaced = json.dumps(_batch()) [:-1] + " " * limit + "}"
    token = world.student["Authorization"].split()[1]
    for http_body, message in ((json.dumps(padded), json.dumps({"type": "scores", "batch": "big", **padded})),
                               (spaced, '{"type": "scores", "batch": "big", ' + spaced[1:])):
        assert len(http_body) > limit and len(padded["observations"]) <= 500
        response = raw(world, "POST", f"/api/sessions/{world.session_id}/observations", http_body, world.student)
        assert response.status_code == 413, response.text
        with world.client.websocket_connect(f"/api/sessions/{world.session_id}/stream?token={token}") as ws:
            ws.send_text(message)
            reply = ws.receive_json()
        assert reply["type"] == "error" and reply["status"] == 413 and reply["batch"] == "big", reply
    assert stored(world) == 0


def test_logout_by_cookie_needs_the_csrf_token(world: World) -> None:
    from fastapi.testclient import TestClient

    browser = TestClient(world.client.app)
    csrf = browser.post("/api/auth/login", json={"email": "a@test.org", "password": "correct horse"}).json()
    assert browser.post("/api/auth/logout").status_code == 403
    assert browser.post("/api/auth/logout", headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert browser.get("/api/me").status_code == 200  # still signed in: another site cannot sign a teacher out
    assert browser.post("/api/auth/logout", headers={"X-CSRF-Token": csrf["csrf_token"]}).status_code == 204
    assert browser.get("/api/me").status_code == 401
    # a bearer token logs out without any CSRF token (no other site can send it)
    assert world.client.post("/api/auth/logout", headers=world.teacher_a).status_code == 204
    assert world.client.get("/api/me", headers=world.teacher_a).status_code == 401
