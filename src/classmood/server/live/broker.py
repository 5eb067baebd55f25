"""Live event brokers: in-process queues by default, Redis pub/sub across several server processes.

Events are ``(event, data)`` pairs per class session; subscribers are the dashboards' SSE streams.

>>> import asyncio
>>> async def demo():
...     broker = InProcessBroker()
...     async with broker.subscribe(1) as sub:
...         await broker.publish(1, "status", {"status": "live"})
...         return await sub.get(1.0)
>>> asyncio.run(demo())
LiveEvent(event='status', data={'status': 'live'})
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)
QUEUE_SIZE = 1000


@dataclass(frozen=True)
class LiveEvent:
    """One server-sent event: its type (observation, presence, status) and JSON data."""

    event: str
    data: dict[str, Any]


class Subscription(Protocol):
    """A dashboard's view of one session's events."""

    async def get(self, timeout: float) -> LiveEvent | None:
        """The next event, or ``None`` when none came within ``timeout`` seconds."""
        ...

    async def get_many(self, timeout: float, limit: int) -> list[LiveEvent]:
        """The next event (waiting up to ``timeout`` seconds) and those already queued behind it."""
        ...


class Broker(Protocol):
    """Publishes a session's events to every subscriber of that session."""

    async def publish(self, session_id: int, event: str, data: dict[str, Any]) -> None:
        """Send an event to the session's subscribers (never raises: live updates are best effort)."""
        ...

    def subscribe(self, session_id: int) -> contextlib.AbstractAsyncContextManager[Subscription]:
        """Receive the session's events while the context is open."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class _QueueSubscription:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[LiveEvent] = asyncio.Queue(QUEUE_SIZE)

    def put(self, item: LiveEvent) -> None:
        # A slow dashboard loses its oldest events rather than holding memory or blocking ingestion.
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(item)

    async def get(self, timeout: float) -> LiveEvent | None:
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None

    async def get_many(self, timeout: float, limit: int) -> list[LiveEvent]:
        first = await self.get(timeout)
        events = [] if first is None else [first]
        while events and len(events) < limit and not self.queue.empty():
            events.append(self.queue.get_nowait())
        return events


class InProcessBroker:
    """Subscribers in this process only (one server process, the default)."""

    def __init__(self) -> None:
        self._subs: dict[int, set[_QueueSubscription]] = {}

    async def publish(self, session_id: int, event: str, data: dict[str, Any]) -> None:
        for sub in list(self._subs.get(session_id, ())):
            sub.put(LiveEvent(event, data))

    @contextlib.asynccontextmanager
    async def subscribe(self, session_id: int) -> AsyncIterator[Subscription]:
        sub = _QueueSubscription()
        self._subs.setdefault(session_id, set()).add(sub)
        try:
            yield sub
        finally:
            subs = self._subs.get(session_id, set())
            subs.discard(sub)
            if not subs:
                self._subs.pop(session_id, None)

    async def close(self) -> None:
        self._subs.clear()


def channel_name(session_id: int) -> str:
    """The Redis channel of a session's events."""
    return f"classmood:live:{session_id}"


class _RedisSubscription:
    def __init__(self, pubsub: Any) -> None:
        self._pubsub = pubsub

    async def get(self, timeout: float) -> LiveEvent | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (left := deadline - loop.time()) > 0:
            message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=left)
            if message and message.get("type") == "message":
                payload = json.loads(message["data"])
                return LiveEvent(payload["event"], payload["data"])
        return None

    async def get_many(self, timeout: float, limit: int) -> list[LiveEvent]:
        first = await self.get(timeout)
        events = [] if first is None else [first]
        while events and len(events) < limit:
            message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=0.0)
            if not message:
                break
            if message.get("type") == "message":
                payload = json.loads(message["data"])
                events.append(LiveEvent(payload["event"], payload["data"]))
        return events


class RedisBroker:
    """Redis pub/sub, so dashboards see events from every server process."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._clients: dict[asyncio.AbstractEventLoop, Any] = {}

    @property
    def _client(self) -> Any:
        # One client per event loop: redis.asyncio connections belong to the loop that opened them.
        import redis.asyncio as redis

        loop = asyncio.get_running_loop()
        if loop not in self._clients:
            self._clients[loop] = redis.from_url(self.url)
        return self._clients[loop]

    async def publish(self, session_id: int, event: str, data: dict[str, Any]) -> None:
        try:
            await self._client.publish(channel_name(session_id), json.dumps({"event": event, "data": data}))
        except Exception as exc:  # a Redis outage must not fail ingestion
            log.warning("live event for session %s not published: %s", session_id, exc)

    @contextlib.asynccontextmanager
    async def subscribe(self, session_id: int) -> AsyncIterator[Subscription]:
        pubsub = self._client.pubsub()
        await pubsub.subscribe(channel_name(session_id))
        # Wait for Redis to confirm, so that events published right after entering are not missed.
        for _ in range(50):
            message = await pubsub.get_message(timeout=0.1)
            if message and message.get("type") == "subscribe":
                break
        try:
            yield _RedisSubscription(pubsub)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.unsubscribe()
                await pubsub.aclose()

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        client = self._clients.pop(loop, None)
        if client is not None:
            await client.aclose()


def make_broker(redis_url: str) -> Broker:
    """Redis pub/sub when a URL is given, else the in-process broker."""
    return RedisBroker(redis_url) if redis_url else InProcessBroker()
