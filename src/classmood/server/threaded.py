"""Run a ClassMood app under uvicorn in a background thread (tests, benchmarks, the agent's demos).

>>> # with ThreadedServer(create_app(settings)) as server:
>>> #     httpx.get(server.url + "/api/health")
"""

from __future__ import annotations

import random
import socket
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn

# Where outgoing connections take their local ports (Linux's default range when the file is missing).
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST_PORT = 10_000


def _ephemeral_low() -> int:
    try:
        return int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free right now, for a server that binds it a moment later.

    Chosen below the ephemeral range: a port from ``bind(0)`` is an ephemeral one, which any outgoing connection of
    the machine (a browser's, a test client's) may take between this check and the server's bind, and the server
    then fails with "address already in use". Below the range only another such server can take it, at random.
    """
    low = _ephemeral_low()
    for _ in range(200):
        port = random.randrange(LOWEST_PORT, max(low, LOWEST_PORT + 1000))
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ThreadedServer:
    """uvicorn serving ``app`` on ``host:port`` in a daemon thread; ``stop()`` shuts it down cleanly."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.app, self.host = app, host
        self.port = port or free_port(host)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8123``."""
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 20.0) -> ThreadedServer:
        """Start serving and wait until the socket accepts connections."""
        config = uvicorn.Config(self.app, host=self.host, port=self.port, log_level="warning", lifespan="on",
                                timeout_graceful_shutdown=5, proxy_headers=False)  # see server.proxies
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=f"uvicorn-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on port {self.port} did not start")
            time.sleep(0.02)
        return self

    def stop(self, timeout_s: float = 20.0) -> None:
        """Ask uvicorn to exit and wait for the thread."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout_s)
        self._server, self._thread = None, None

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

