"""The server's CLI commands: help texts, users create, db upgrade, purge and a real `classmood serve`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from classmood.benchmarks.servers import tls
from classmood.cli import app as cli
from classmood.server.accounts.models import User
from classmood.server.analytics.models import COUNT_COLUMNS, STEADY_COLUMNS, AggregateCell
from classmood.server.app import create_app
from classmood.server.db import head_revision, make_engine, make_session_factory
from classmood.server.observations.models import Observation
from classmood.server.observations.service import NewObservation, insert_observations
from classmood.server.sessions.models import ClassSession, Participant
from classmood.server.threaded import free_port

from ..server.conftest import make_settings, probs_of

COMMANDS = [["serve"], ["purge"], ["join"], ["users", "create"], ["db", "upgrade"], ["bench", "server"]]
runner = CliRunner()


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command: list[str]) -> None:
    result = runner.invoke(cli, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output and len(result.output.splitlines()) > 3


def test_db_upgrade_and_users_create(empty_database_url: str, tmp_path: Path) -> None:
    upgraded = runner.invoke(cli, ["db", "upgrade", "--database-url", empty_database_url, "--data-dir", str(tmp_path)])
    assert upgraded.exit_code == 0 and f"revision {head_revision()}" in upgraded.output
    args = ["users", "create", "--email", "T@x.org", "--name", "Tea", "--role", "admin", "--password", "secret123",
            "--database-url", empty_database_url, "--data-dir", str(tmp_path)]
    created = runner.invoke(cli, args)
    assert created.exit_code == 0 and "created admin t@x.org" in created.output
    duplicate = runner.invoke(cli, args)
    assert duplicate.exit_code == 1 and "exists already" in duplicate.output
    engine = make_engine(empty_database_url)
    with make_session_factory(engine)() as db:
        assert [(u.email, u.role) for u in db.query(User)] == [("t@x.org", "admin")]
    engine.dispose()


def test_purge_deletes_only_expired_data(database_url: str, tmp_path: Path) -> None:
    app = create_app(make_settings(database_url, tmp_path / "data"))
    state = app.state.cm
    with state.sessions() as db:
        from classmood.server.accounts.service import create_user
        from classmood.server.courses.service import create_course
        from classmood.server.sessions.service import create_session, join_session

        teacher = create_user(db, passwords=state.passwords, email="t@x.org", password="password", name="T")
        course = create_course(db, teacher=teacher, title="C")
        old = create_session(db, course=course, title="old", aggregate_only=False)
        recent = create_session(db, course=course, title="new", aggregate_only=False)
        p_old = join_session(db, code=old.code, display_name="O")
        p_new = join_session(db, code=recent.code, display_name="N")
        old.status, old.ended_at = "ended", datetime.now(UTC) - timedelta(days=40)
        db.commit()
        now = time.time()
        for participant, session, age_days in ((p_old, old, 40), (p_new, recent, 40), (p_new, recent, 1)):
            item = NewObservation(uuid.uuid4(), now - age_days * 86400, tuple(probs_of("Happy").values()))
            insert_observations(db, session_id=session.id, participant_id=participant.id, items=[item])
        # Sealed aggregate-only figures (as release.seal writes them) 40 days and 1 day old.
        figures = {c: 1 for c in (*COUNT_COLUMNS, *STEADY_COLUMNS)}
        db.add_all([AggregateCell(session_id=recent.id, cell_s=30, cell=int((now - days * 86400) // 30),
                                  participants=5, **figures) for days in (40, 1)])
        db.commit()
    state.engine.dispose()
    result = runner.invoke(cli, ["purge", "--days", "30", "--database-url", database_url,
                                 "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "purged 2 observations and 1 participants" in result.output
    engine = make_engine(database_url)
    with make_session_factory(engine)() as db:
        assert db.query(Observation).count() == 1
        assert [p.display_name for p in db.query(Participant)] == ["N"]
        assert db.query(ClassSession).count() == 2
        [kept] = db.query(AggregateCell).all()
        assert kept.cell * 30 > now - 2 * 86400
    engine.dispose()


def _read_until(process: subprocess.Popen[str], pattern: str, timeout: float = 60) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if re.search(pattern, line):
            return lines
    raise AssertionError(f"{pattern!r} not printed; got {''.join(lines)}")


def _serve(data_dir: Path, port: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "classmood.cli", "serve", "--port", str(port), "--data-dir",
                             str(data_dir), "--dev"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)


def _wait_healthy(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/health", timeout=2, verify=tls()).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError("server did not come up")


@pytest.mark.slow
def test_serve_prints_first_start_logins_once(tmp_path: Path) -> None:
    port = free_port()
    process = _serve(tmp_path, port)
    try:
        lines = _read_until(process, r"teacher\s+email")
        _wait_healthy(f"http://127.0.0.1:{port}")
        text = "".join(lines)
        assert f"http://localhost:{port}/login" in text
        assert "docs/DEPLOYMENT.md" in text  # the legal notice, once, on first start
        for role in ("admin", "teacher"):
            email, password = re.search(rf"{role}\s+email: (\S+)\s+password: (\S+)", text).groups()  # type: ignore[union-attr]
            token = httpx.post(f"http://127.0.0.1:{port}/api/auth/token", json={"email": email, "password": password},
                               verify=tls())
            assert token.status_code == 200
            me = httpx.get(f"http://127.0.0.1:{port}/api/me",
                           headers={"Authorization": f"Bearer {token.json()['access_token']}"}, verify=tls()).json()
            assert me["role"] == role
    finally:
        process.terminate()
        process.wait(30)
    again = _serve(tmp_path, port)
    try:
        lines = _read_until(again, r"ClassMood server")
        _wait_healthy(f"http://127.0.0.1:{port}")
    finally:
        again.terminate()
        rest, _ = again.communicate(timeout=30)
    assert "password" not in "".join(lines) + rest and "DEPLOYMENT" not in "".join(lines) + rest
    assert (tmp_path / "classmood.db").is_file() and (tmp_path / "secret_key").is_file()
