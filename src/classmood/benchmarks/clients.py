"""Minimal hand-written clients of the ClassMood API for the benchmarks, on asyncio streams.

General-purpose clients cost more CPU per message than the server does, so the load generators of a small
machine would measure themselves; these do only what a student page does: HTTP/1.1 POSTs on a kept-alive
connection and a WebSocket of text messages. The dashboard listens with httpx (:func:`sse_events`), and
:func:`create_session` and :func:`join_all` set a class up through the API.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import io
import json
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx


class HttpConnection:
    """One kept-alive HTTP/1.1 connection; ``post`` sends a JSON body and returns (status, parsed JSON)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, headers: str) -> tuple[int, Any]:
        """Send one request (``headers`` as CRLF-ended lines) and read its answer."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n{headers}"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
        self.writer.write(head.encode("ascii") + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection")
        status = int(status_line.split()[1])
        length, close = 0, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "connection" and value.strip().lower() == "close":
                close = True
        payload = await self.reader.readexactly(length) if length else b""
        if close:
            self.close()
        try:
            return status, json.loads(payload) if payload else None
        except ValueError:  # not JSON (a bare 500 from the server's last resort): the text as it is
            return status, payload.decode("utf-8", "replace")

    def close(self) -> None:
        """Drop the connection (the next ``post`` opens a new one)."""
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


_NO_MASK = b"\x00\x00\x00\x00"  # RFC 6455 wants client frames masked; a zero key leaves them as they are


def ws_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (FIN set).

    >>> ws_frame(1, b"hi")
    b'\\x81\\x82\\x00\\x00\\x00\\x00hi'
    """
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + _NO_MASK + payload


class WebSocket:
    """A minimal WebSocket client: text messages out, text messages in, pings answered."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, url: str, path: str) -> WebSocket:
        """Open ``path`` on ``url``'s server and complete the upgrade (ConnectionError if refused)."""
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        reader, writer = await asyncio.open_connection(host, port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode("ascii"))
        status = await reader.readline()
        if b" 101 " not in status:
            writer.close()
            raise ConnectionError(f"no WebSocket upgrade: {status!r}")
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        return cls(reader, writer)

    def send(self, text: bytes) -> None:
        """Queue one text message (written on the next drain or loop turn)."""
        self.writer.write(ws_frame(1, text))

    async def recv(self) -> bytes:
        """The next text message; pings are answered on the way, a close raises ConnectionError."""
        while True:
            head = await self.reader.readexactly(2)
            opcode, n = head[0] & 0x0F, head[1] & 0x7F
            if n == 126:
                n = int.from_bytes(await self.reader.readexactly(2), "big")
            elif n == 127:
                n = int.from_bytes(await self.reader.readexactly(8), "big")
            payload = await self.reader.readexactly(n) if n else b""
            if opcode == 9:
                self.writer.write(ws_frame(10, payload))
            elif opcode == 8:
                raise ConnectionError(f"closed by the server ({int.from_bytes(payload[:2], 'big')})")
            elif opcode in (1, 2, 0):
                return payload

    def close(self) -> None:
        """Say goodbye (close frame 1000) and close the socket."""
        with contextlib.suppress(Exception):
            self.writer.write(ws_frame(8, (1000).to_bytes(2, "big")))
        self.writer.close()


async def sse_events(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> AsyncIterator[tuple[str, str]]:
    """Yield ``(event, data)`` pairs of a server-sent event stream."""
    async with client.stream("GET", path, headers=headers, timeout=httpx.Timeout(30, read=None)) as r:
        r.raise_for_status()
        event, data = "message", list[str]()
        async for line in r.aiter_lines():
            if not line:
                if data:
                    yield event, "\n".join(data)
                event, data = "message", []
            elif line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())


@dataclass
class Dashboard:
    """A teacher's dashboard: the ``observation`` events it heard (client id, time), reconnecting as the page's
    EventSource does; ``statuses`` counts the error answers of its reconnects."""

    heard: list[tuple[str, float]] = field(default_factory=list)
    reconnects: int = 0
    statuses: dict[int, int] = field(default_factory=dict)

    async def listen(self, client: httpx.AsyncClient, session_id: int, auth: dict[str, str]) -> None:
        """Listen until cancelled."""
        while True:
            try:
                async for event, data in sse_events(client, f"/api/sessions/{session_id}/live", auth):
                    if event == "observation":
                        self.heard.append((json.loads(data).get("client_id"), time.time()))
            except httpx.HTTPStatusError as exc:
                status = exc.response.status_code
                self.statuses[status] = self.statuses.get(status, 0) + 1
                await asyncio.sleep(1.0)
            except httpx.HTTPError:
                await asyncio.sleep(1.0)
            self.reconnects += 1


async def settle(done: Callable[[], bool], within_s: float = 2.0) -> None:
    """Wait until ``done()`` (the last live events reached the dashboard), at most ``within_s``: live events
    are best effort, so a run ends without those that never come, but waits no longer than they take."""
    deadline = time.monotonic() + within_s
    while not done() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


# -- API set-up -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Setup:
    """What the run needs from the API: the session and the teacher's bearer header."""

    session_id: int
    code: str
    auth: dict[str, str]


async def _token(client: httpx.AsyncClient, email: str, password: str) -> dict[str, str]:
    r = await client.post("/api/auth/token", json={"email": email, "password": password})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def create_session(client: httpx.AsyncClient, email: str, password: str) -> Setup:
    """As the admin: create a teacher; as the teacher: a course and a live session."""
    admin = await _token(client, email, password)
    teacher_email, teacher_password = f"load-{secrets.token_hex(4)}@example.org", secrets.token_urlsafe(12)
    r = await client.post("/api/users", headers=admin, json={"email": teacher_email, "password": teacher_password,
                                                             "name": "Load Teacher", "role": "teacher"})
    r.raise_for_status()
    auth = await _token(client, teacher_email, teacher_password)
    r = await client.post("/api/courses", headers=auth, json={"title": "Load test"})
    r.raise_for_status()
    r = await client.post(f"/api/courses/{r.json()['id']}/sessions", headers=auth,
                          json={"title": "Load run", "analysis_mode": "server"})  # the students send frames
    r.raise_for_status()
    session = r.json()
    (await client.post(f"/api/sessions/{session['id']}/start", headers=auth)).raise_for_status()
    return Setup(session_id=session["id"], code=session["code"], auth=auth)

async def join_all(client: httpx.AsyncClient, code: str, students: int) -> list[str]:
    """Join ``students`` participants (20 at a time) and return their tokens, in order."""
    gate = asyncio.Semaphore(20)

    async def one(i: int) -> str:
        async with gate:
            r = await client.post("/api/join", json={"code": code, "display_name": f"Student {i}", "consent": True})
            r.raise_for_status()
            return str(r.json()["token"])

    return list(await asyncio.gather(*(one(i) for i in range(students))))


async def device_class(client: httpx.AsyncClient, email: str, password: str, students: int,
                       interval_s: float) -> tuple[Setup, list[str]]:
    """A live on-device session with a score every ``interval_s``, and the tokens of ``students`` who joined."""
    setup = await create_session(client, email, password)
    r = await client.patch(f"/api/sessions/{setup.session_id}", headers=setup.auth,
                           json={"analysis_mode": "device", "frame_interval_s": interval_s})
    r.raise_for_status()
    return setup, await join_all(client, setup.code, students)


async def stored_ids(client: httpx.AsyncClient, setup: Setup) -> list[str]:
    """The client ids of every observation stored for the session, from its CSV export (duplicates kept)."""
    r = await client.get(f"/api/sessions/{setup.session_id}/export.csv", headers=setup.auth)
    r.raise_for_status()
    return [row["client_id"] for row in csv.DictReader(io.StringIO(r.text))]
