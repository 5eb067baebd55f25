"""The OpenAPI document, completed with what FastAPI cannot see: the error answers and non-JSON bodies.

Every API operation may answer with the refusals of docs/API.md; they are documented here once for
all operations, with their real shapes: ``{"detail": "text"}``, except 422 whose ``detail`` is a list
of validation errors, and 429 which says in ``Retry-After`` when to try again.

>>> from fastapi import FastAPI
>>> app = FastAPI()
>>> @app.get("/api/x")
... def x() -> dict[str, int]:
...     return {}
>>> install_openapi(app)
>>> sorted(app.openapi()["paths"]["/api/x"]["get"]["responses"])[:3]
['200', '400', '401']
"""

from __future__ import annotations

from typing import Any

from fastapi.openapi.utils import get_openapi

ERRORS: dict[int, str] = {
    400: "Malformed request (an empty or undecodable frame, a broken multipart body).",
    401: "No credentials, or wrong or expired ones.",
    403: "Authenticated but not allowed (another teacher's course, a participant token, a missing CSRF header, "
         "an aggregate-only session).",
    404: "No such resource (also for ids outside the database's integer range).",
    409: "Conflicts with the current state (an ended session, an e-mail in use).",
    413: "Body over the route's limit (refused as it streams, chunked or not), or too many items or pixels.",
    415: "The frame is not a JPEG or PNG image.",
    422: "Invalid values: non-finite numbers, NUL characters, lone surrogates, blank titles, ids out of range...",
    429: "Over a rate limit (frames per second, failed logins); Retry-After says when to try again.",
}
STREAMS = {".csv": "text/csv", "/live": "text/event-stream"}
_ERROR_SCHEMA = {"title": "Error", "type": "object", "required": ["detail"],
                 "properties": {"detail": {"type": "string", "title": "Detail"}}}
_VALIDATION_SCHEMA = {"$ref": "#/components/schemas/HTTPValidationError"}
_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before retrying", "required": True,
                                "schema": {"type": "string", "pattern": "^[0-9]+$"}}}


def _error_response(status: int) -> dict[str, Any]:
    schema = _VALIDATION_SCHEMA if status == 422 else {"$ref": "#/components/schemas/Error"}
    response: dict[str, Any] = {"description": ERRORS[status], "content": {"application/json": {"schema": schema}}}
    if status == 429:
        response["headers"] = _RETRY_AFTER
    return response


def complete(document: dict[str, Any]) -> dict[str, Any]:
    """Add the error answers to every operation and the right media type to streaming ones (in place)."""
    components = document.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = _ERROR_SCHEMA
    components.setdefault("HTTPValidationError", _validation_schemas(components))
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status in ERRORS:
                responses[str(status)] = _error_response(status)
            for suffix, media_type in STREAMS.items():
                if path.endswith(suffix):
                    responses.setdefault("200", {"description": "Successful Response"})["content"] = {
                        media_type: {"schema": {"type": "string"}}}
    return document


def _validation_schemas(components: dict[str, Any]) -> dict[str, Any]:
    components.setdefault("ValidationError", {
        "title": "ValidationError", "type": "object", "required": ["loc", "msg", "type"],
        "properties": {"loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
                       "msg": {"type": "string"}, "type": {"type": "string"}}})
    return {"title": "HTTPValidationError", "type": "object", "properties": {
        "detail": {"type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}}}}


def install_openapi(app: Any) -> None:
    """Make ``app.openapi()`` (and ``/openapi.json``) return the completed document, built once."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, description=app.description,
                                   routes=app.routes)
            app.openapi_schema = complete(document)
        schema: dict[str, Any] = app.openapi_schema
        return schema

    app.openapi = openapi
