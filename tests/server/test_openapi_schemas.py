"""Every JSON route under /api declares its answer: a 2xx ``application/json`` response with a schema of fields.

And the answers of the routes that had none until issue 23 (``/api/me``, ``/api/me/observations``,
``/api/ondevice/config``, ``/api/analysis/stats``, ``/api/health``) are valid against the schema they declare.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import jsonschema_rs
import pytest
from fastapi.testclient import TestClient

from classmood.config import Settings
from classmood.server.app import create_app

from .conftest import World, probs_of

NOT_JSON = {"text/csv", "text/event-stream", "application/pdf"}  # the CSV exports, the live stream, the report


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    """The app's OpenAPI document (no request is made; an in-memory SQLite database)."""
    app = create_app(Settings(database_url="sqlite://", secret_key="s" * 32))
    document: dict[str, Any] = app.openapi()
    app.state.cm.engine.dispose()
    return document


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    resolved: dict[str, Any] = node
    return resolved


def schema_problem(document: dict[str, Any], schema: dict[str, Any]) -> str | None:
    """Why a response schema does not describe its answer (None when it does): a model's named fields, a list
    of them, or a choice among them; never a bare ``object`` of anything (a ``dict`` return type)."""
    schema = _resolve(document, schema)
    if "anyOf" in schema or "oneOf" in schema:
        problems = [schema_problem(document, s) for s in schema.get("anyOf", schema.get("oneOf", []))]
        return next((p for p in problems if p), None)
    if schema.get("type") == "array":
        return schema_problem(document, schema.get("items", {}))
    if schema.get("type") == "object" and schema.get("properties"):
        return None
    return f"no fields declared: {schema}"


def route_problems(document: dict[str, Any]) -> list[str]:
    """Each operation under /api whose 2xx answers are JSON without a schema of fields."""
    problems = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if not path.startswith("/api/"):
                continue
            for status, response in operation["responses"].items():
                content = response.get("content", {})
                if not status.startswith("2") or status == "204" or NOT_JSON & set(content):
                    continue
                schema = content.get("application/json", {}).get("schema")
                problem = schema_problem(document, schema) if schema else "no application/json schema"
                if problem:
                    problems.append(f"{method.upper()} {path} {status}: {problem}")
    return problems


def test_every_json_route_under_api_has_a_response_schema(openapi: dict[str, Any]) -> None:
    assert route_problems(openapi) == []
    operations = sum(len(ops) for path, ops in openapi["paths"].items() if path.startswith("/api/"))
    assert operations >= 30  # the walk saw the API (today 33 operations)


def test_the_walk_finds_a_route_without_a_model(openapi: dict[str, Any]) -> None:
    free_dict = {"application/json": {"schema": {"type": "object", "additionalProperties": True}}}
    loose = {"paths": {"/api/x": {"get": {"responses": {"200": {"content": free_dict}}}},
                       "/api/y": {"get": {"responses": {"200": {"description": "no content declared"}}}}}}
    assert len(route_problems(loose)) == 2


def answer_is_valid(openapi: dict[str, Any], client: TestClient, path: str, headers: dict[str, str]) -> None:
    """GET ``path`` answers 200 with JSON that is valid against its declared schema."""
    response = client.get(path, headers=headers)
    assert response.status_code == 200, response.text
    template = next(p for p in openapi["paths"] if p == path.split("?")[0])
    schema = openapi["paths"][template]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    validator = jsonschema_rs.Draft202012Validator({**schema, "components": openapi["components"]})
    errors = [error.message for error in validator.iter_errors(response.json())]
    assert errors == [], f"{path}: {errors}"


def test_the_answers_match_their_schemas(world: World, openapi: dict[str, Any]) -> None:
    body = {"observations": [{"id": str(uuid.uuid4()), "ts": time.time(), "probs": probs_of("Happy")}]}
    assert world.client.post(f"/api/sessions/{world.session_id}/observations", json=body,
                             headers=world.student).status_code == 200
    for path, headers in [("/api/me", world.teacher_a), ("/api/me", world.student),
                          ("/api/me/observations", world.student), ("/api/ondevice/config", {}),
                          ("/api/analysis/stats", world.teacher_a), ("/api/health", {})]:
        answer_is_valid(openapi, world.client, path, headers)
    mine = world.client.get("/api/me/observations", headers=world.student).json()
    assert mine["count"] == 1 and mine["observations"][0]["label"] == "Happy"
    me = world.client.get("/api/me", headers=world.student).json()["participant"]
    assert (me["id"], me["participant_id"], me["display_name"]) == (world.participant_id, world.participant_id, "Ann")
    config = world.client.get("/api/ondevice/config")
    assert config.headers["cache-control"] == "no-cache"
