"""ClassMood server processes for the benchmarks: start, wait until up, stop; and a fresh database for them.

Every benchmark that needs a server runs it as ``classmood serve`` does (uvicorn with the same options) in a
child process, so that its CPU can be measured apart from the load generator's, and so that it can be
stopped, killed or pointed at a database that is restarted under it.

>>> env = server_env("/tmp/x", "a@example.org", "pw", CLASSMOOD_MAX_FPS="5")
>>> env["CLASSMOOD_DATA_DIR"], env["CLASSMOOD_MAX_FPS"]
('/tmp/x', '5')
"""

from __future__ import annotations

import contextlib
import os
import secrets
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache

import httpx

from classmood.server.threaded import free_port

__all__ = ["SERVER_CODE", "ServerProcess", "free_port", "local_server", "local_server_process", "pg_schema",
           "server_env", "server_processes", "start_server", "stop_server", "wait_until_up"]

# uvicorn as ``classmood serve`` runs it (uvloop and httptools when installed); argv: port [WebSocket protocol].
# CLASSMOOD_BENCH_PROFILE=file.prof writes the server's cProfile statistics there when it stops.
SERVER_CODE = """
import cProfile, os, signal, sys, uvicorn
from classmood.config import Settings
from classmood.server.app import create_app, uvicorn_options
from classmood.server.bootstrap import prepare_server
settings = Settings().resolved()
prepare_server(settings)
app = create_app(settings.model_copy(update={"auto_migrate": False}))
profile = os.environ.get("CLASSMOOD_BENCH_PROFILE")
if profile:
    import time
    profiler = cProfile.Profile(time.process_time)  # CPU time: on a shared machine wall time counts waits
    def dump(*_):  # uvicorn hands SIGTERM back to this handler once it has shut down
        profiler.disable()
        profiler.dump_stats(f"{profile}.{os.getpid()}")
        os._exit(0)
    signal.signal(signal.SIGTERM, dump)
    profiler.enable()
ws = sys.argv[2] if len(sys.argv) > 2 else "auto"
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", ws=ws, backlog=4096,
            **uvicorn_options(settings))
"""


@dataclass(frozen=True)
class ServerProcess:
    """One server under test: its base URL and its child process."""

    url: str
    proc: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        """The process id (for /proc CPU accounting)."""
        return self.proc.pid


@cache
def tls() -> ssl.SSLContext:
    """One TLS context for every HTTP client of this process: ``httpx.Client(verify=tls())``.

    httpx otherwise builds a context for each client it makes, ``httpx.get`` included, and loads the CA bundle into
    it: 35 ms of CPU each time, which a readiness poll, a class of simulated students or a test suite pays hundreds
    of times over, on the cores the server under test needs.
    """
    return httpx.create_ssl_context()


def wait_until_up(url: str, alive: Callable[[], bool], timeout_s: float = 60.0) -> None:
    """Poll ``url``'s ``/`` until it answers below 500; fail early once ``alive()`` says the server is gone."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"the server for {url} stopped before it answered; see the log above")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/", timeout=2, verify=tls()).status_code < 500:
                return
        time.sleep(0.2)
    raise RuntimeError(f"the server at {url} did not answer within {timeout_s:.0f} s")


def server_env(data_dir: str, email: str, password: str, **settings: str) -> dict[str, str]:
    """The environment of a development server with its first admin; ``settings`` are more CLASSMOOD_* values."""
    return dict(os.environ, CLASSMOOD_DATA_DIR=data_dir, CLASSMOOD_DEV="1", CLASSMOOD_ADMIN_EMAIL=email,
                CLASSMOOD_ADMIN_PASSWORD=password, CLASSMOOD_SECRET_KEY=secrets.token_urlsafe(32), **settings)


def start_server(env: dict[str, str], *, ws_impl: str = "auto", nice: int = 0, prelude: str = "") -> ServerProcess:
    """Start one server on a free port and wait until it answers; ``prelude`` is Python run before the app is
    built (a fault benchmark's hook)."""
    port = free_port()
    cmd = [sys.executable, "-c", prelude + SERVER_CODE, str(port), ws_impl]
    if nice:
        cmd = ["nice", "-n", str(nice), *cmd]
    server = ServerProcess(f"http://127.0.0.1:{port}", subprocess.Popen(cmd, env=env))
    try:
        wait_until_up(server.url, lambda: server.proc.poll() is None)
    except BaseException:
        stop_server(server)
        raise
    return server


def stop_server(server: ServerProcess, timeout_s: float = 15.0) -> None:
    """SIGTERM (a clean shutdown), then SIGKILL after ``timeout_s``."""
    server.proc.terminate()
    try:
        server.proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()


@contextlib.contextmanager
def server_processes(count: int, env: dict[str, str], ws_impl: str = "auto") -> Iterator[list[ServerProcess]]:
    """``count`` servers with the same environment (one database), started one after the other: the first
    migrates the database."""
    started: list[ServerProcess] = []
    try:
        for _ in range(count):
            started.append(start_server(env, ws_impl=ws_impl))
        yield started
    finally:
        for server in started:
            server.proc.terminate()
        for server in started:
            stop_server(server)


@contextlib.contextmanager
def local_server(email: str, password: str, *, nice: int = 0) -> Iterator[str]:
    """One server on a fresh SQLite database in a temporary directory; yields its URL."""
    with local_server_process(email, password, nice=nice) as server:
        yield server.url


@contextlib.contextmanager
def local_server_process(email: str, password: str, *, nice: int = 0) -> Iterator[ServerProcess]:
    """:func:`local_server`, yielding the process (for its CPU time) as well as its URL."""
    with tempfile.TemporaryDirectory(prefix="cm-load-") as tmp:
        server = start_server(server_env(tmp, email, password, CLASSMOOD_MAX_FPS="5"), nice=nice)
        try:
            yield server
        finally:
            stop_server(server)


@contextlib.contextmanager
def pg_schema(url: str) -> Iterator[str]:
    """A fresh PostgreSQL schema for the run (dropped afterwards); yields the URL that uses it."""
    import psycopg

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    schema = f"cm_load_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(plain, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        sep = "&" if "?" in url else "?"
        yield f"{url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
