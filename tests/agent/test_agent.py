"""The desktop agent against a real uvicorn server that goes down and comes back."""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from classmood.agent import Agent, Pending, ServerClient, SessionEnded, Spool, video_frames
from classmood.benchmarks.servers import tls
from classmood.labels import LABELS
from classmood.server.app import create_app
from classmood.server.threaded import ThreadedServer

from ..server.conftest import astronaut_bgr, build_world, make_settings


def write_video(path: Path, frames: int = 12, fps: float = 4.0) -> Path:
    """A short MJPG video of the astronaut drifting sideways."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (640, 480))
    base = astronaut_bgr()
    for i in range(frames):
        shift = np.float32([[1, 0, 4 * i], [0, 1, 0]])
        writer.write(cv2.warpAffine(base, shift, (640, 480), borderValue=(90, 90, 90)))
    writer.release()
    return path


def exported_ids(url: str, session_id: int, headers: dict[str, str]) -> list[str]:
    """Client ids of every stored observation, read back through the CSV export."""
    text = httpx.get(f"{url}/api/sessions/{session_id}/export.csv", headers=headers, verify=tls()).text
    return [row["client_id"] for row in csv.DictReader(io.StringIO(text))]


@pytest.fixture
def video(tmp_path: Path) -> Path:
    return write_video(tmp_path / "class.avi")


def _start(database_url: str, tmp_path: Path, port: int | None = None) -> tuple[Any, ThreadedServer]:
    app = create_app(make_settings(database_url, tmp_path / "data"))
    return app, ThreadedServer(app, port=port).start()


def test_agent_delivers_everything_exactly_once_across_an_outage(database_url: str, tmp_path: Path,
                                                                 video: Path) -> None:
    app, server = _start(database_url, tmp_path)
    with httpx.Client(base_url=server.url, verify=tls()) as http:
        world = build_world(http, app)  # type: ignore[arg-type]
    frames = list(video_frames(video, every_s=0.25, start_ts=time.time() - 60))
    assert len(frames) == 12
    client = ServerClient(server.url, timeout_s=5)
    agent = Agent(client, client.join(world.code, "Desk"), spool=tmp_path / "spool.jsonl", batch_size=4)
    for ts, frame in frames[:6]:
        agent.observe(frame, ts)
    generated = [item.client_id for item in agent.pending]
    first = agent.flush()
    assert first.error is None and first.pending == 0 and first.sent == 6  # one face per frame

    server.stop()
    app.state.cm.engine.dispose()
    for ts, frame in frames[6:]:
        assert agent.observe(frame, ts) == 1
    offline = agent.flush()
    assert offline.error is not None and offline.sent == 0 and offline.pending == 6
    assert len(Spool(tmp_path / "spool.jsonl").load()) == 6  # also safe from an agent crash
    waiting = list(agent.pending)
    generated += [item.client_id for item in waiting]

    app, server = _start(database_url, tmp_path, port=server.port)  # the server restarts on the same address
    back = agent.flush()
    assert back.error is None and back.sent == 6 and back.pending == 0
    assert Spool(tmp_path / "spool.jsonl").load() == []
    # A response lost on the way back makes the agent send the same items again: nothing is doubled.
    agent.pending = waiting
    again = agent.flush()
    assert again.sent == 0 and again.duplicates == 6

    ids = exported_ids(server.url, world.session_id, world.teacher_a)
    assert sorted(ids) == sorted(generated) and len(set(ids)) == 12
    histogram = httpx.get(f"{server.url}/api/sessions/{world.session_id}/histogram", headers=world.teacher_a,
                          verify=tls()).json()
    assert histogram["total"] == 12 and histogram["participants"] == 1
    client.close()
    server.stop()
    app.state.cm.engine.dispose()


def test_spool_survives_an_agent_restart(database_url: str, tmp_path: Path, video: Path) -> None:
    app, server = _start(database_url, tmp_path)
    with httpx.Client(base_url=server.url, verify=tls()) as http:
        world = build_world(http, app)  # type: ignore[arg-type]
    client = ServerClient(server.url, timeout_s=5)
    joined = client.join(world.code, "Desk")
    dead = ServerClient("http://127.0.0.1:9", timeout_s=1)  # nothing listens on the discard port
    crashed = Agent(dead, joined, spool=tmp_path / "spool.jsonl")
    for ts, frame in list(video_frames(video, every_s=1.0))[:3]:
        crashed.observe(frame, ts)
    assert crashed.flush().pending == 3
    revived = Agent(client, joined, spool=tmp_path / "spool.jsonl")
    assert len(revived.pending) == 3
    assert revived.flush().sent == 3
    client.close()
    dead.close()
    server.stop()
    app.state.cm.engine.dispose()


def test_send_frames_mode_and_session_end(database_url: str, tmp_path: Path, video: Path) -> None:
    app, server = _start(database_url, tmp_path)
    with httpx.Client(base_url=server.url, verify=tls()) as http:
        world = build_world(http, app)  # type: ignore[arg-type]
        client = ServerClient(server.url, timeout_s=10)
        agent = Agent(client, client.join(world.code, "Frames"), send_frames=True, spool=tmp_path / "s.jsonl")
        result = agent.run(video_frames(video, every_s=1.0), flush_every_s=0.0)
        assert result.error is None and result.pending == 0 and agent.delivered == 3
        assert not (tmp_path / "s.jsonl").exists()  # frames are never spooled to disk
        total = http.get(f"/api/sessions/{world.session_id}/histogram", headers=world.teacher_a).json()["total"]
        assert total == 3
        http.post(f"/api/sessions/{world.session_id}/end", headers=world.teacher_a)
        agent.observe(next(video_frames(video))[1])
        with pytest.raises(SessionEnded):
            agent.flush()
    client.close()
    server.stop()
    app.state.cm.engine.dispose()


def test_join_command_sends_scores_from_a_video(database_url: str, tmp_path: Path, video: Path) -> None:
    from typer.testing import CliRunner

    from classmood.cli import app as cli

    app, server = _start(database_url, tmp_path)
    with httpx.Client(base_url=server.url, verify=tls()) as http:
        world = build_world(http, app)  # type: ignore[arg-type]
        result = CliRunner().invoke(cli, ["join", server.url, world.code, "--name", "Cli", "--video", str(video),
                                          "--interval", "1", "--yes"])
        assert result.exit_code == 0, result.output
        assert "joined session" in result.output and "delivered 3, waiting 0" in result.output
        rows = http.get(f"/api/sessions/{world.session_id}/participants", headers=world.teacher_a).json()
        assert {r["display_name"]: r["observations"] for r in rows} == {"Ann": 0, "Cli": 3}
        refused = CliRunner().invoke(cli, ["join", server.url, world.code, "--name", "No", "--video", str(video)],
                                     input="n\n")
        assert refused.exit_code == 1
        rows = http.get(f"/api/sessions/{world.session_id}/participants", headers=world.teacher_a).json()
        assert "No" not in {r["display_name"] for r in rows}  # no consent, no participant
    server.stop()
    app.state.cm.engine.dispose()


def _join_process(url: str, code: str, video: Path, spool: Path) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "classmood.cli", "join", url, code, "--name", "Desk", "--video", str(video),
               "--interval", "0.25", "--spool", str(spool), "--yes"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


@pytest.mark.slow
def test_a_killed_agent_comes_back_as_the_same_participant(database_url: str, tmp_path: Path) -> None:
    app, server = _start(database_url, tmp_path)
    with httpx.Client(base_url=server.url, verify=tls()) as http:
        world = build_world(http, app)  # type: ignore[arg-type]
    # Long enough that the first agent is killed mid-video (it delivers after its first frame), short enough
    # that the second analyses little: every frame is a face detection and a model run.
    video, spool = write_video(tmp_path / "long.avi", frames=20), tmp_path / "spool.jsonl"
    first = _join_process(server.url, world.code, video, spool)
    assert first.stdout is not None
    for line in first.stdout:  # kill -9 as soon as something was delivered
        if re.search(r"delivered [1-9]", line):
            break
    first.kill()
    first.wait(30)
    delivered = exported_ids(server.url, world.session_id, world.teacher_a)
    assert delivered
    # The worst moment to die: scores sent, spool not yet rewritten. Put the delivered ones back in it.
    rows = list(csv.DictReader(io.StringIO(httpx.get(f"{server.url}/api/sessions/{world.session_id}/export.csv",
                                                     headers=world.teacher_a, verify=tls()).text)))
    Spool(spool).append(Pending(r["client_id"], float(r["ts"]), {label: float(r[f"p_{label.lower()}"])
                                                                for label in LABELS}) for r in rows)

    second = _join_process(server.url, world.code, video, spool)
    output, _ = second.communicate(timeout=120)
    assert second.returncode == 0, output
    assert "again as participant" in output
    ids = exported_ids(server.url, world.session_id, world.teacher_a)
    assert len(ids) == len(set(ids)) and set(delivered) <= set(ids)  # 0 duplicates
    rows = httpx.get(f"{server.url}/api/sessions/{world.session_id}/participants", headers=world.teacher_a,
                     verify=tls()).json()
    assert sorted(r["display_name"] for r in rows) == ["Ann", "Desk"]  # one participant for the agent
    assert Spool(spool).load() == []
    server.stop()
    app.state.cm.engine.dispose()
