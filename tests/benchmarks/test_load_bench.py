"""The load benchmark, small: real WebSocket students against a real server process lose and duplicate nothing."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from classmood.benchmarks.load import astronaut_jpegs, clip_jpegs, format_load, frame_source, pct, run_load
from classmood.cli import app as cli

from ..browser.conftest import LiveServer


def test_astronaut_variants_are_distinct_jpegs() -> None:
    jpegs = astronaut_jpegs(4, width=320)
    assert len(set(jpegs)) == 4
    img = cv2.imdecode(np.frombuffer(jpegs[0], np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (320, 320, 3)


def test_clip_frames_are_a_webcam_stream_at_the_students_pace() -> None:
    every_second, twice_a_second = clip_jpegs(1.0), clip_jpegs(0.5)
    assert len(every_second) == 6 and len(twice_a_second) == 12  # the 6-s clip, one picture per interval
    assert len(set(every_second)) == 6
    img = cv2.imdecode(np.frombuffer(every_second[0], np.uint8), cv2.IMREAD_COLOR)
    assert img.shape == (240, 320, 3)  # the student page's frame width
    with pytest.raises(ValueError, match="astronaut, clip"):
        frame_source("holiday photos", 1.0)


def test_percentiles() -> None:
    assert pct([], 50) is None
    assert pct([3.0, 1.0, 2.0], 50) == 2.0
    assert pct([0.0, 10.0], 95) == pytest.approx(9.5)


def test_bench_load_command_is_registered_with_help() -> None:
    result = CliRunner().invoke(cli, ["bench", "load", "--help"])
    assert result.exit_code == 0
    assert "--students" in result.output and "--seconds" in result.output


def test_bench_load_refuses_bad_numbers() -> None:
    with pytest.raises(ValueError, match="students"):
        run_load(0, 5)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_small_load_run_loses_and_duplicates_nothing(live_server: LiveServer) -> None:
    # --url mode against the in-process test server (the CLI starts its own server process instead)
    # Own thread: Playwright's sync API may already run an event loop in this one (asyncio.run refuses that).
    with ThreadPoolExecutor(1) as pool:
        result = pool.submit(run_load, 3, 4.0, url=live_server.url, email=live_server.admin_email,
                             password=live_server.admin_password).result()
    print(format_load(result))
    assert result.frames_sent >= 9
    assert result.acks + result.errors + result.unacked == result.frames_sent
    assert result.errors == 0 and result.unacked == 0 and result.no_face == 0
    assert result.lost == 0 and result.duplicated == 0
    assert result.stored == result.expected == result.frames_sent  # every astronaut frame has one face
    assert len(result.dashboard_delays) == result.frames_sent  # the dashboard heard of every frame
    assert all(d > 0 for d in result.dashboard_delays)


def _postgres_or_skip() -> None:
    psycopg = pytest.importorskip("psycopg")
    from classmood.benchmarks.load_device import DEFAULT_POSTGRES

    try:
        psycopg.connect(DEFAULT_POSTGRES.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable: {exc}")


def test_device_load_refuses_an_unknown_transport() -> None:
    from classmood.benchmarks.load_device import run_device_load

    with pytest.raises(ValueError, match="transport"):
        run_device_load(1, 1.0, transport="carrier pigeon")


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_small_device_load_run_loses_and_duplicates_nothing() -> None:
    """Half the students on the WebSocket stream, half over HTTP, spread over two server processes, in one run:
    each transport loses and duplicates nothing, and the dashboard on the other process hears of every score
    (through Redis). One server on its own broker, with the same mixed class: test_faults.py's PostgreSQL and
    SQLite scenarios (which also lose and duplicate nothing, through a fault)."""
    servers = 2
    from classmood.benchmarks.device_report import format_device_load
    from classmood.benchmarks.load_device import run_device_load

    _postgres_or_skip()
    with ThreadPoolExecutor(1) as pool:  # own thread: see above
        result = pool.submit(run_device_load, 6, 2.0, interval_s=0.5, drain_s=10.0, transport="mixed",
                             servers_count=servers, generators=2).result()
    print(format_device_load(result))
    assert result.scores_sent >= 6 * 3 and result.acknowledged == result.scores_sent
    assert 0 < result.acknowledged_over_http < result.acknowledged  # both transports carried scores
    assert result.lost == 0 and result.duplicated == 0 and result.unacked == 0 and result.errors == 0
    assert result.stored == result.scores_sent
    assert len(result.dashboard_delays) == result.scores_sent  # the dashboard heard of every score
    assert len(result.generator_cpu_pct) == 2 and len(result.server_cpu_pct) == servers
