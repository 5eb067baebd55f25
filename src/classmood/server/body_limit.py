"""Refuse request bodies over their route's limit as they arrive, chunked or not (pure ASGI middleware).

A limit read from ``Content-Length`` alone is no limit: a chunked upload has none. This middleware
counts the bytes of every ``http.request`` message the application pulls and, past the limit, stops
the request with 413, so nothing ever buffers more than the limit plus one chunk. A declared
``Content-Length`` over the limit is refused before the application runs at all. The 413 answer
closes the connection, so the client stops sending at once.

The limits, documented in docs/API.md: a camera frame (``CLASSMOOD_MAX_FRAME_BYTES`` plus multipart
framing), a batch of observations (``CLASSMOOD_BATCH_MAX`` items), and 64 KiB for every other route.

>>> limits = RouteLimits(frame=10, batch=20, default=5)
>>> limits.limit_for("/api/sessions/3/frames"), limits.limit_for("/api/join")
(10, 5)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_BODY_LIMIT = 64 * 1024
_FRAMES = re.compile(r"^/api/sessions/[^/]+/frames/?$")
_BATCH = re.compile(r"^/api/sessions/[^/]+/observations/?$")


@dataclass(frozen=True)
class RouteLimits:
    """The largest body, in bytes, each route accepts."""

    frame: int
    batch: int
    default: int = DEFAULT_BODY_LIMIT

    def limit_for(self, path: str) -> int:
        """The body limit of the route at ``path``."""
        if _FRAMES.match(path):
            return self.frame
        if _BATCH.match(path):
            return self.batch
        return self.default


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once the body passes its limit.

    An HTTPException, so that FastAPI's body parsing lets it through (it turns other errors into 400)
    and the app answers it as it answers every HTTP error.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds the limit of {limit} bytes for this route",
                         headers={"Connection": "close"})


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() and len(text) < 19 else -1
    return None


async def refuse(send: Send, limit: int) -> None:
    """Send the 413 answer and ask the server to close the connection."""
    body = json.dumps({"detail": BodyTooLarge(limit).detail}).encode()
    await send({"type": "http.response.start", "status": 413, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """ASGI middleware: bodies over ``limits.limit_for(path)`` get 413, counted as they stream in."""

    def __init__(self, app: ASGIApp, limits: RouteLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.limit_for(scope.get("path", ""))
        declared = _declared_length(scope)
        if declared is not None and (declared < 0 or declared > limit):
            await refuse(send, limit)
            return
        counter = _Counter(receive, limit)
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counter.receive, tracked)
        except BodyTooLarge:
            if started:
                raise
            await refuse(send, limit)


class _Counter:
    """Wraps ``receive``: counts body bytes and raises :class:`BodyTooLarge` past the limit (and ever after)."""

    def __init__(self, receive: Receive, limit: int) -> None:
        self._receive = receive
        self.limit = limit
        self.received = 0

    async def receive(self) -> Message:
        if self.received > self.limit:
            raise BodyTooLarge(self.limit)
        message: dict[str, Any] = dict(await self._receive())
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                raise BodyTooLarge(self.limit)
        return message
