"""`classmood bench faults`, short: a class survives a PostgreSQL restart, a Redis restart and a full SQLite disk.

Each run starts its own PostgreSQL or Redis (never the shared ones) and real server processes; the students
are real WebSocket and HTTP clients with outboxes. Nothing accepted may be lost or duplicated, the server must
answer 503 (never 500) while writes cannot succeed, and scores and live events must flow again afterwards.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

from classmood.benchmarks.fault_class import ClassPlan
from classmood.benchmarks.faults import FaultResult, format_fault, run_faults
from classmood.benchmarks.servers import free_port
from classmood.benchmarks.services import postgres_bin
from classmood.cli import app as cli
from classmood.server.errors import Unavailable, database_outage, error_headers

# Short but whole: a score every 0.25 s makes 12 a student before the class ends, several of them refused
# while the fault lasts (the teacher's probes too), and 1.5 s of class after it show the recovery.
SHORT = ClassPlan(students=6, seconds=3.0, interval_s=0.25, drain_s=15.0, fault_at_s=0.75, down_s=1.0,
                  after_fault_s=1.5)


def _run(scenario: str) -> FaultResult:
    (result,) = run_faults([scenario], plan=SHORT)
    print(format_fault(result))
    return result


def _survived(result: FaultResult) -> None:
    assert result.outcome == "passed", result.outcome
    assert result.sent >= SHORT.students * 10
    assert result.stored == result.acknowledged == result.sent  # every score stored, once
    assert result.lost == 0 and result.duplicated == 0 and result.unacked == 0
    assert not [s for s in {**result.refused, **result.probes} if s >= 500 and s != 503]  # no 500, ever
    assert result.recovery_s is not None and result.dashboard_recovery_s is not None


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_postgres_restart_mid_class_loses_and_duplicates_nothing() -> None:
    if postgres_bin() is None:
        pytest.skip("no PostgreSQL binaries (initdb, pg_ctl)")
    result = _run("postgres")
    _survived(result)
    assert result.probes.get(503, 0) > 0 and result.refused.get(503, 0) > 0  # 503 to teacher and students
    assert any("database is unavailable" in d for d in result.details)
    assert result.dashboard_reconnects == 0  # the live stream stayed open through the restart
    assert result.recovery_s < 10


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_redis_restart_live_events_resume_on_the_other_process() -> None:
    result = _run("redis")
    _survived(result)
    assert result.refused == {}  # Redis down costs live events, never a score
    assert result.dashboard_recovery_s is not None and result.dashboard_recovery_s < 5


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_sqlite_disk_full_answers_503_and_keeps_what_was_committed() -> None:
    result = _run("sqlite")
    _survived(result)
    assert result.refused.get(503, 0) > 0
    assert any("disk is full" in d for d in result.details)
    assert result.integrity == "ok"


def test_a_full_sqlite_disk_maps_to_503_with_retry_after(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'full.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x BLOB)"))
    with pytest.raises(OperationalError) as caught, engine.begin() as conn:
        conn.execute(text("PRAGMA max_page_count = 1"))  # the file's size: full
        conn.execute(text("INSERT INTO t VALUES (zeroblob(100000))"))
    mapped = database_outage(caught.value)
    assert isinstance(mapped, Unavailable) and mapped.status == 503 and "disk is full" in mapped.detail
    assert error_headers(mapped) == {"Retry-After": "2"}


def test_a_database_that_refuses_connections_maps_to_503() -> None:
    engine = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/x?connect_timeout=2")
    with pytest.raises(OperationalError) as caught, engine.connect():
        pass
    mapped = database_outage(caught.value)
    assert mapped is not None and mapped.status == 503 and "unavailable" in mapped.detail


def test_sql_bugs_stay_500(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(OperationalError) as caught, engine.connect() as conn:
        conn.execute(text("SELECT * FROM no_such_table"))
    assert database_outage(caught.value) is None  # a bug, not an outage
    assert database_outage(ValueError("no")) is None


def test_bench_faults_is_registered_and_refuses_bad_plans() -> None:
    result = CliRunner().invoke(cli, ["bench", "faults", "--help"])
    assert result.exit_code == 0 and "--scenarios" in result.output and "--down" in result.output
    with pytest.raises(ValueError, match="unknown scenario"):
        run_faults(["carrier pigeon"])
    with pytest.raises(ValueError, match="before the class ends"):
        run_faults(["sqlite"], plan=ClassPlan(seconds=10.0, fault_at_s=5.0, down_s=5.0))
