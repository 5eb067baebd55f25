"""``free_port``: a port a server can bind a moment later, out of the way of outgoing connections."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from classmood.server import threaded
from classmood.server.threaded import LOWEST_PORT, free_port


def test_free_ports_lie_below_the_ephemeral_range_and_can_be_bound() -> None:
    low = threaded._ephemeral_low()
    ports = {free_port() for _ in range(20)}
    assert all(LOWEST_PORT <= port < low for port in ports) and len(ports) > 1
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_a_port_in_use_is_never_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        monkeypatch.setattr(threaded.random, "randrange", lambda *_: port)  # every draw hits the taken port
        assert free_port() != port  # falls back to one the kernel picks


def test_without_the_range_file_linuxs_default_is_assumed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(threaded, "EPHEMERAL_RANGE", tmp_path / "missing")
    assert threaded._ephemeral_low() == 32_768 and free_port() < 32_768
