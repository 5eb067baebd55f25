"""Domain errors raised by services; the app turns each into ``{"detail": ...}`` with its status.

Services stay free of HTTP types, yet every refusal still reaches the client with the status
that docs/API.md promises.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base class: a request that cannot be honoured, with the HTTP status that says why."""

    status = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BadRequest(DomainError):
    """Malformed input (400)."""

    status = 400


class Unauthorized(DomainError):
    """No or wrong credentials (401)."""

    status = 401


class Forbidden(DomainError):
    """Authenticated but not allowed (403)."""

    status = 403


class NotFound(DomainError):
    """Unknown resource (404)."""

    status = 404


class Conflict(DomainError):
    """Conflicts with the current state, e.g. an ended session (409)."""

    status = 409


class TooLarge(DomainError):
    """Too many bytes, pixels or items (413)."""

    status = 413


class Unsupported(DomainError):
    """Not an image (415)."""

    status = 415


class Invalid(DomainError):
    """Well-formed but invalid values (422)."""

    status = 422


class RateLimited(DomainError):
    """Over a rate limit (429)."""

    status = 429
