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
REDIS_TICK_S = 0.05  # Redis events of a session are sent together once per tick (see RedisBroker.publish)
REDIS_RETRY_S = 0.5  # a subscription whose Redis is unreachable tries again this often


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


def _redis_down() -> tuple[type[BaseException], ...]:
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeout
    except ModuleNotFoundError:  # Redis is optional: without redis-py there is no RedisBroker either
        return (OSError,)
    return (RedisConnectionError, RedisTimeout, OSError)


REDIS_DOWN = _redis_down()  # what redis-py raises while the server is unreachable or restarting


def _unpack(raw: Any) -> list[LiveEvent]:
    """The events of one Redis message: ``{"events": [...]}`` (one tick's), or one ``{"event", "data"}``."""
    payload = json.loads(raw)
    items = payload.get("events", [payload])
    return [LiveEvent(item["event"], item["data"]) for item in items]


class _RedisSubscription:
    """One session's channel. While Redis is unreachable (restarting) ``get`` waits and tries again, so the
    dashboard's stream stays open; redis-py reconnects and subscribes again by itself once Redis is back."""

    def __init__(self, pubsub: Any, channel: str) -> None:
        self._pubsub, self._channel = pubsub, channel
        self._ready: list[LiveEvent] = []  # unpacked from a message, not handed out yet
        self._subscribed = False
        self._down = False

    async def open(self) -> None:
        """Subscribe and wait for Redis to confirm, so that events published right after are not missed."""
        try:
            await self._pubsub.subscribe(self._channel)
            for _ in range(50):
                message = await self._pubsub.get_message(timeout=0.1)
                if message and message.get("type") == "subscribe":
                    break
        except REDIS_DOWN as exc:
            self._went_down(exc)
            return
        self._subscribed = True

    def _went_down(self, exc: BaseException) -> None:
        if not self._down:
            log.warning("live events of %s paused: Redis unreachable (%s)", self._channel, exc)
        self._down = True

    async def _fill(self, timeout: float) -> None:
        if not self._subscribed:
            await self.open()
        if self._subscribed:
            try:
                message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=timeout)
            except REDIS_DOWN as exc:
                self._went_down(exc)
            else:
                if self._down:
                    log.warning("live events of %s resumed: Redis is back", self._channel)
                    self._down = False
                if message and message.get("type") == "message":
                    self._ready.extend(_unpack(message["data"]))
                return
        await asyncio.sleep(min(timeout, REDIS_RETRY_S))  # Redis is down: try again in a moment

    async def close(self) -> None:
        """Unsubscribe and release the connection."""
        if self._subscribed:
            await self._pubsub.unsubscribe()
        await self._pubsub.aclose()

    async def get(self, timeout: float) -> LiveEvent | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._ready and (left := deadline - loop.time()) > 0:
            await self._fill(left)
        return self._ready.pop(0) if self._ready else None

    async def get_many(self, timeout: float, limit: int) -> list[LiveEvent]:
        first = await self.get(timeout)
        if first is None:
            return []
        while len(self._ready) < limit - 1:
            before = len(self._ready)
            await self._fill(0.0)
            if len(self._ready) == before:
                break
        events, self._ready = [first, *self._ready[: limit - 1]], self._ready[limit - 1 :]
        return events


class RedisBroker:
    """Redis pub/sub, so dashboards see events from every server process."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._clients: dict[asyncio.AbstractEventLoop, Any] = {}
        # per event loop: the events of this tick by session, and the task that sends them at its end
        self._ticks: dict[asyncio.AbstractEventLoop, dict[int, list[dict[str, Any]]]] = {}
        self._flushers: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}
        self._failing = False  # the last PUBLISH failed: Redis is down (warn once per outage)

    @property
    def _client(self) -> Any:
        # One client per event loop: redis.asyncio connections belong to the loop that opened them.
        import redis.asyncio as redis

        loop = asyncio.get_running_loop()
        if loop not in self._clients:
            self._clients[loop] = redis.from_url(self.url)
        return self._clients[loop]

    async def publish(self, session_id: int, event: str, data: dict[str, Any]) -> None:
        """Queue the event for this tick: one Redis message per session every :data:`REDIS_TICK_S`.

        A class of 2,000 on-device students makes 2,000 events a second; one PUBLISH (and one message to
        parse in every subscribing process) each cost the servers more CPU than storing the scores.
        """
        loop = asyncio.get_running_loop()
        self._ticks.setdefault(loop, {}).setdefault(session_id, []).append({"event": event, "data": data})
        flusher = self._flushers.get(loop)
        if flusher is None or flusher.done():
            self._flushers[loop] = loop.create_task(self._flush_tick(loop))

    async def _flush_tick(self, loop: asyncio.AbstractEventLoop) -> None:
        # Until a tick passes without events (those queued while this one publishes go with the next).
        while True:
            await asyncio.sleep(REDIS_TICK_S)
            tick = self._ticks.pop(loop, {})
            if not tick:
                return
            for session_id, events in tick.items():
                try:
                    await self._client.publish(channel_name(session_id), json.dumps({"events": events}))
                except Exception as exc:  # a Redis outage must not fail ingestion (redis-py reconnects later)
                    if not self._failing:
                        log.warning("live events not published until Redis answers again: %s", exc)
                    self._failing = True
                    continue
                if self._failing:
                    log.warning("live events published again: Redis is back")
                    self._failing = False

    @contextlib.asynccontextmanager
    async def subscribe(self, session_id: int) -> AsyncIterator[Subscription]:
        sub = _RedisSubscription(self._client.pubsub(), channel_name(session_id))
        await sub.open()
        try:
            yield sub
        finally:
            with contextlib.suppress(Exception):
                await sub.close()

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        flusher = self._flushers.pop(loop, None)
        if flusher is not None:
            with contextlib.suppress(Exception):
                await flusher  # the last tick's events still go out
        client = self._clients.pop(loop, None)
        if client is not None:
            await client.aclose()


def make_broker(redis_url: str) -> Broker:
    """Redis pub/sub when a URL is given, else the in-process broker."""
    return RedisBroker(redis_url) if redis_url else InProcessBroker()
