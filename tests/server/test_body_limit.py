"""Bodies over their route's limit are refused as they stream in, with or without Content-Length.

The in-process tests cover every route; the last test runs a real uvicorn server process and sends it
a 100 MB chunked body, as an attacker without an account would.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from classmood.benchmarks.servers import free_port, tls, wait_until_up
from classmood.server.body_limit import DEFAULT_BODY_LIMIT

from .conftest import World

MB = 1024 * 1024


def chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    """A body without Content-Length (sent chunked)."""
    for _ in range(total // size):
        yield b" " * size


def _routes(world: World) -> list[tuple[str, str]]:
    paths = world.client.get("/openapi.json").json()["paths"]
    routes = []
    for template, operations in paths.items():
        path = template.replace("{session_id}", str(world.session_id)).replace("{course_id}", str(world.course_id))
        path = path.replace("{teacher_id}", str(world.teacher_a_id)).replace("{code}", world.code)
        # routes that read a body (the others never pull it: the server discards it unread)
        routes.extend((method.upper(), path) for method, operation in operations.items()
                      if "requestBody" in operation or path.endswith("/frames"))
    return routes


def test_chunked_bodies_over_the_limit_are_413_on_every_route(world: World) -> None:
    routes = _routes(world)
    assert len(routes) >= 8
    for method, path in routes:
        kind = "image/jpeg" if path.endswith("/frames") else "application/json"
        headers = {**world.student, "Content-Type": kind}
        response = world.client.request(method, path, content=chunks(8 * MB), headers=headers)
        assert response.status_code == 413, (method, path, response.status_code, response.text)
        assert "limit" in response.json()["detail"]


def test_declared_length_over_the_limit_is_413_before_the_route_runs(world: World) -> None:
    too_big = b"{" + b" " * DEFAULT_BODY_LIMIT + b"}"
    response = world.client.post("/api/join", content=too_big, headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and response.headers["connection"] == "close"
    frames = world.client.post(f"/api/sessions/{world.session_id}/frames", content=b"\xff" * (3 * MB),
                               headers={**world.student, "Content-Type": "image/jpeg"})
    assert frames.status_code == 413


def test_bodies_within_the_limit_still_work(world: World, astronaut_jpeg: bytes) -> None:
    def chunked_jpeg() -> Iterator[bytes]:
        for start in range(0, len(astronaut_jpeg), 4096):
            yield astronaut_jpeg[start:start + 4096]

    frame = world.client.post(f"/api/sessions/{world.session_id}/frames", content=chunked_jpeg(),
                              headers={**world.student, "Content-Type": "image/jpeg"})
    assert frame.status_code == 200 and frame.json()["faces"] == 1
    joined = world.client.post("/api/join", content=iter([json.dumps(
        {"code": world.code, "display_name": "Bo", "consent": True}).encode()]),
        headers={"Content-Type": "application/json"})
    assert joined.status_code == 201


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """`uvicorn --factory classmood.server.app:app_from_env` on a fresh SQLite file, in its own process."""
    port = free_port()
    env = {**os.environ, "CLASSMOOD_DATA_DIR": str(tmp_path), "CLASSMOOD_SECRET_KEY": "k" * 40,
           "CLASSMOOD_DEV": "1", "CLASSMOOD_AUTO_MIGRATE": "1"}
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "classmood.server.app:app_from_env",
                                "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, lambda: process.poll() is None)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=20)


def _send_chunked(port: int, total: int, result: dict[str, object]) -> None:
    """POST /api/join with a chunked body of ``total`` bytes on a raw socket, until the server answers."""
    chunk = b" " * (256 * 1024)
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST /api/join HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        sock.settimeout(0.0)
        sent, answer = 0, b""
        while sent < total:
            try:
                answer += sock.recv(65536)
            except BlockingIOError:
                pass
            except OSError:
                break
            if answer:
                break
            try:
                sock.settimeout(5.0)
                sock.sendall(framed)
                sock.settimeout(0.0)
                sent += len(chunk)
            except OSError:
                break
        sock.settimeout(10.0)
        try:
            while b"\r\n\r\n" not in answer:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        except OSError:
            pass
    result.update(sent=sent, answer=answer)


def test_a_100_mb_chunked_join_is_413_without_memory_growth_or_stalls(server_process: tuple[str, int]) -> None:
    url, pid = server_process
    port = int(url.rsplit(":", 1)[1])
    with httpx.Client(base_url=url, timeout=5, verify=tls()) as client:
        for _ in range(5):
            client.get("/api/health")  # warm up: lazy imports, the database connection
        before = _rss_bytes(pid)
        result: dict[str, object] = {}
        sender = threading.Thread(target=_send_chunked, args=(port, 100 * MB, result))
        sender.start()
        latencies = []
        while sender.is_alive() or not latencies:
            started = time.perf_counter()
            assert client.get("/api/health").status_code == 200
            latencies.append(time.perf_counter() - started)
            time.sleep(0.01)
        sender.join()
        growth = _rss_bytes(pid) - before
    print(f"RSS growth {growth / MB:.1f} MB, /api/health at most {max(latencies) * 1000:.0f} ms")
    answer = result["answer"]
    assert isinstance(answer, bytes) and answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert growth < 50 * MB, f"server RSS grew by {growth / MB:.1f} MB"
    assert max(latencies) < 0.2, f"/api/health took up to {max(latencies) * 1000:.0f} ms"
