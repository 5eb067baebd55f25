"""Authorization matrix: every endpoint × student / teacher A / teacher B / admin / anonymous.

Teacher A owns the course and session; the student is a participant of that session. One
populated database per backend serves every case; cases that change state make their own target.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from classmood.server.app import create_app

from .conftest import PG_URL, World, build_world, drop_pg_schema, make_settings, new_pg_schema, probs_of

ROLES = ("student", "teacher_a", "teacher_b", "admin", "anonymous")
TEACHERS = {"teacher_a", "admin"}
Call = tuple[str, str, dict[str, Any]]


@dataclass(frozen=True)
class Case:
    """An endpoint, who may call it, and how to build a call (possibly creating a fresh target)."""

    name: str
    allowed: frozenset[str]
    build: Callable[[World], Call]


def _new_session(w: World) -> int:
    body = w.client.post(f"/api/courses/{w.course_id}/sessions", json={"title": "x"}, headers=w.teacher_a).json()
    return int(body["id"])


def _frame(w: World) -> Call:
    jpeg = {"content": w.blank, "headers": {"Content-Type": "image/jpeg"}}  # type: ignore[attr-defined]
    return ("POST", f"/api/sessions/{w.session_id}/frames", jpeg)


def _batch(w: World) -> Call:
    body = {"observations": [{"id": str(uuid.uuid4()), "ts": time.time(), "probs": probs_of("Happy")}]}
    return ("POST", f"/api/sessions/{w.session_id}/observations", {"json": body})


EVERYONE = frozenset(ROLES)
USERS = frozenset({"teacher_a", "teacher_b", "admin"})
OWNER = frozenset(TEACHERS)
ADMIN = frozenset({"admin"})
STUDENT = frozenset({"student"})
CASES = [
    Case("me", EVERYONE - {"anonymous"}, lambda w: ("GET", "/api/me", {})),
    Case("list users", ADMIN, lambda w: ("GET", "/api/users", {})),
    Case("create user", ADMIN, lambda w: ("POST", "/api/users", {"json": {
        "email": f"{uuid.uuid4().hex[:8]}@t.org", "password": "long enough", "name": "N"}})),
    Case("list courses", USERS, lambda w: ("GET", "/api/courses", {})),
    Case("create course", USERS, lambda w: ("POST", "/api/courses", {"json": {"title": "T"}})),
    Case("get course", OWNER, lambda w: ("GET", f"/api/courses/{w.course_id}", {})),
    Case("list sessions", OWNER, lambda w: ("GET", f"/api/courses/{w.course_id}/sessions", {})),
    Case("create session", OWNER, lambda w: ("POST", f"/api/courses/{w.course_id}/sessions",
                                             {"json": {"title": "S"}})),
    Case("get session", OWNER, lambda w: ("GET", f"/api/sessions/{w.session_id}", {})),
    Case("patch session", OWNER, lambda w: ("PATCH", f"/api/sessions/{w.session_id}",
                                            {"json": {"show_self_to_students": True}})),
    Case("start session", OWNER, lambda w: ("POST", f"/api/sessions/{_new_session(w)}/start", {})),
    Case("end session", OWNER, lambda w: ("POST", f"/api/sessions/{_new_session(w)}/end", {})),
    Case("join info", EVERYONE, lambda w: ("GET", f"/api/join/{w.code}", {})),
    Case("join", EVERYONE, lambda w: ("POST", "/api/join", {"json": {"code": w.code, "display_name": "J",
                                                                     "consent": True}})),
    Case("send frame", STUDENT, _frame),
    Case("send batch", STUDENT, _batch),
    Case("own observations", STUDENT, lambda w: ("GET", "/api/me/observations", {})),
    Case("delete own observations", STUDENT, lambda w: ("DELETE", "/api/me/observations", {})),
    Case("session histogram", OWNER, lambda w: ("GET", f"/api/sessions/{w.session_id}/histogram", {})),
    Case("session timeline", OWNER, lambda w: ("GET", f"/api/sessions/{w.session_id}/timeline", {})),
    Case("session participants", OWNER, lambda w: ("GET", f"/api/sessions/{w.session_id}/participants", {})),
    Case("session export", OWNER, lambda w: ("GET", f"/api/sessions/{w.session_id}/export.csv", {})),
    Case("course histogram", OWNER, lambda w: ("GET", f"/api/courses/{w.course_id}/histogram", {})),
    Case("teacher histogram", OWNER, lambda w: ("GET", f"/api/teachers/{w.teacher_a_id}/histogram", {})),
    Case("platform histogram", ADMIN, lambda w: ("GET", "/api/platform/histogram", {})),
    Case("platform overview", ADMIN, lambda w: ("GET", "/api/platform/overview", {})),
    # Allowed callers of the live stream are tested in test_live.py (an endless response).
    Case("live events", OWNER, lambda w: ("GET", f"/api/sessions/{w.session_id}/live", {})),
]
MATRIX = [pytest.param(case, role, id=f"{case.name}-{role}") for case in CASES for role in ROLES
          if not (case.name == "live events" and role in case.allowed)]


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def shared_world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                 blank_jpeg: bytes) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("authz")
    schema = new_pg_schema() if request.param == "postgresql" else ""
    url = f"{PG_URL}?options=-csearch_path%3D{schema}" if schema else f"sqlite:///{folder / 'authz.db'}"
    app = create_app(make_settings(url, folder / "data"))
    try:
        with TestClient(app) as client:
            world = build_world(client, app)
            world.blank = blank_jpeg  # type: ignore[attr-defined]
            yield world
    finally:
        app.state.cm.engine.dispose()
        if schema:
            drop_pg_schema(schema)


def headers_of(world: World, role: str) -> dict[str, str]:
    return {"student": world.student, "teacher_a": world.teacher_a, "teacher_b": world.teacher_b,
            "admin": world.admin, "anonymous": {}}[role]


@pytest.mark.parametrize(("case", "role"), MATRIX)
def test_authorization_matrix(shared_world: World, case: Case, role: str) -> None:
    method, url, kwargs = case.build(shared_world)
    headers = {**kwargs.pop("headers", {}), **headers_of(shared_world, role)}
    response = shared_world.client.request(method, url, headers=headers, **kwargs)
    if role in case.allowed:
        assert response.status_code < 300, f"{role} should be allowed: {response.status_code} {response.text}"
    else:
        expected = 401 if role == "anonymous" else 403
        assert response.status_code == expected, f"{role}: {response.status_code} {response.text}"
