"""Fixtures of the server tests: a real database (SQLite file or PostgreSQL schema), the app, users.

Every test that takes ``backend`` runs twice, on SQLite and on PostgreSQL (``-m "not postgres"``
skips the latter). Each test gets a database of its own, migrated and empty (``database_url``), or one never
migrated (``empty_database_url``): a SQLite file, or a PostgreSQL schema that no other test (of this run or
another on the same server) uses at the same time.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from classmood.benchmarks.server import astronaut_bgr
from classmood.config import Settings
from classmood.server.accounts.service import create_user
from classmood.server.app import create_app
from classmood.server.db import make_engine, upgrade

from ..conftest import CHEAP_HASHING

PG_URL = os.environ.get("CLASSMOOD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("CLASSMOOD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PASSWORD = "correct horse"


def _pg_plain() -> str:
    return PG_URL.replace("postgresql+psycopg://", "postgresql://")


def new_pg_schema() -> str:
    """Create a uniquely named schema; skip the test when PostgreSQL is not reachable."""
    psycopg = pytest.importorskip("psycopg")
    schema = f"cm_test_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(_pg_plain(), autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}: {exc}")
    return schema


def drop_pg_schema(schema: str) -> None:
    """Drop a schema made by :func:`new_pg_schema`."""
    import psycopg

    with psycopg.connect(_pg_plain(), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    """The database dialect under test."""
    return str(request.param)


@pytest.fixture
def empty_database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of the backend (never migrated): for the tests of the migrations themselves."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'classmood.db'}"
        return
    schema = new_pg_schema()
    try:
        yield pg_url(schema)
    finally:
        drop_pg_schema(schema)


def pg_url(schema: str) -> str:
    """The URL of the test server with ``schema`` as the search path."""
    return f"{PG_URL}?options=-csearch_path%3D{schema}"


def _migrated(url: str) -> None:
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per test process; each test gets a copy (migrating takes longer)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "classmood.db"
    _migrated(f"sqlite:///{path}")
    return path


class SchemaPool:
    """Migrated PostgreSQL schemas of this test process, each used by one test at a time.

    A test's schema is emptied afterwards (every table but ``alembic_version``, identities restarted) and kept for
    the next test: as clean as a new one, without running the migrations again. One that cannot be emptied at
    once (a connection of the test still holds a lock) is dropped instead.
    """

    def __init__(self) -> None:
        self.free: list[str] = []
        self.made: list[str] = []

    def take(self) -> str:
        if self.free:
            return self.free.pop()
        schema = new_pg_schema()
        self.made.append(schema)
        _migrated(pg_url(schema))
        return schema

    def give_back(self, schema: str) -> None:
        import psycopg

        try:
            with psycopg.connect(_pg_plain(), autocommit=True) as conn:
                conn.execute("SET lock_timeout = '2s'")
                tables = [row[0] for row in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename <> 'alembic_version'",
                    (schema,))]
                conn.execute("TRUNCATE " + ", ".join(f'"{schema}"."{t}"' for t in tables) + " RESTART IDENTITY")
        except psycopg.Error:
            drop_pg_schema(schema)
            self.made.remove(schema)
            return
        self.free.append(schema)

    def close(self) -> None:
        for schema in self.made:
            drop_pg_schema(schema)


@pytest.fixture(scope="session")
def pg_schemas() -> Iterator[SchemaPool]:
    """This process's pool of migrated PostgreSQL schemas, dropped at the end of the run."""
    pool = SchemaPool()
    yield pool
    pool.close()


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database of the backend, migrated to head and empty: a copy of a migrated SQLite file, or a
    PostgreSQL schema of the test's own."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        shutil.copyfile(template, tmp_path / "classmood.db")
        yield f"sqlite:///{tmp_path / 'classmood.db'}"
        return
    pool: SchemaPool = request.getfixturevalue("pg_schemas")
    schema = pool.take()
    try:
        yield pg_url(schema)
    finally:
        pool.give_back(schema)


def make_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    """Test settings: cheap password hashing, no rate limit unless a test sets one."""
    values: dict[str, Any] = {"database_url": database_url, "data_dir": data_dir, "secret_key": "t" * 40,
                              "dev": True, **CHEAP_HASHING, "min_faces": 3,
                              "max_fps": 1000.0, "analysis_threads": 1, "private_cell_s": 60, "private_seal_s": 0.25,
                              "analysis_mode": "server"}  # the frame tests; on-device sessions: test_analysis_mode.py
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Settings for an app on the test database."""
    return make_settings(database_url, tmp_path / "data")


@pytest.fixture
def app(settings: Settings) -> Iterator[Any]:
    """The real app (migrated database); its engine is disposed afterwards."""
    application = create_app(settings)
    yield application
    application.state.cm.engine.dispose()


@pytest.fixture
def client(app: Any) -> Iterator[TestClient]:
    """An HTTP client talking to the app in-process (lifespan included)."""
    with TestClient(app) as test_client:
        yield test_client


@dataclass
class World:
    """A populated platform: admin, teachers A and B, A's course and live session, one student of it."""

    client: TestClient
    admin: dict[str, str]
    teacher_a: dict[str, str]
    teacher_b: dict[str, str]
    teacher_a_id: int
    teacher_b_id: int
    course_id: int
    session_id: int
    code: str
    student: dict[str, str]
    participant_id: int

    def join(self, name: str, code: str | None = None) -> tuple[dict[str, str], int]:
        """Join the session as another student; return (auth header, participant id)."""
        body = self.client.post("/api/join", json={"code": code or self.code, "display_name": name,
                                                   "consent": True}).json()
        return {"Authorization": f"Bearer {body['token']}"}, body["participant_id"]


def bearer(client: TestClient, email: str, password: str = PASSWORD) -> dict[str, str]:
    """Log in through ``POST /api/auth/token`` and return the auth header."""
    response = client.post("/api/auth/token", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def build_world(client: TestClient, app: Any) -> World:
    """Create the users through the service, the rest through the API."""
    state = app.state.cm
    with state.sessions() as db:
        create_user(db, passwords=state.passwords, email="admin@test.org", password=PASSWORD, name="Admin",
                    role="admin")
        a = create_user(db, passwords=state.passwords, email="a@test.org", password=PASSWORD, name="Teacher A")
        b = create_user(db, passwords=state.passwords, email="b@test.org", password=PASSWORD, name="Teacher B")
        a_id, b_id = a.id, b.id
    admin, ta, tb = bearer(client, "admin@test.org"), bearer(client, "a@test.org"), bearer(client, "b@test.org")
    course = client.post("/api/courses", json={"title": "Biology"}, headers=ta).json()
    session = client.post(f"/api/courses/{course['id']}/sessions", json={"title": "Cells"}, headers=ta).json()
    assert client.post(f"/api/sessions/{session['id']}/start", headers=ta).status_code == 200
    joined = client.post("/api/join", json={"code": session["code"], "display_name": "Ann", "consent": True}).json()
    return World(client, admin, ta, tb, a_id, b_id, course["id"], session["id"], session["code"],
                 {"Authorization": f"Bearer {joined['token']}"}, joined["participant_id"])


@pytest.fixture
def world(client: TestClient, app: Any) -> World:
    """A populated platform on the test database."""
    return build_world(client, app)


@pytest.fixture(scope="session")
def astronaut_jpeg() -> bytes:
    """The astronaut frame as JPEG bytes."""
    return cv2.imencode(".jpg", astronaut_bgr(), [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


@pytest.fixture(scope="session")
def blank_jpeg() -> bytes:
    """A grey frame without any face."""
    return cv2.imencode(".jpg", np.full((480, 640, 3), 128, np.uint8))[1].tobytes()


def arrived_when_seen(app: Any, session_id: int) -> None:
    """Pretend each observation of the session arrived when its face was seen (``received_at = ts``).

    Aggregate-only figures count rows by the cell of their arrival (classmood.server.analytics.release); tests
    that lay out data in the past use this to place them in known cells, as a device sending at once would.
    The cells sealed so far are forgotten, as if the rows had been there all along.
    """
    from sqlalchemy import delete, update

    from classmood.server.analytics.models import AggregateCell, AggregateSeal
    from classmood.server.observations.models import Observation

    with app.state.cm.sessions() as db:
        db.execute(update(Observation).where(Observation.session_id == session_id)
                   .values(received_at=Observation.ts))
        for table in (AggregateCell, AggregateSeal):
            db.execute(delete(table).where(table.session_id == session_id))
        db.commit()


def probs_of(label: str, p: float = 0.7) -> dict[str, float]:
    """A probability vector whose top emotion is ``label``."""
    from classmood.labels import LABELS

    rest = (1 - p) / (len(LABELS) - 1)
    return {name: (p if name == label else rest) for name in LABELS}


@pytest.fixture
def app_factory_secure(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """A production-mode app (``dev`` off) with one admin, for cookie flag checks."""
    application = create_app(make_settings(database_url, tmp_path / "data", dev=False))
    state = application.state.cm
    with state.sessions() as db:
        create_user(db, passwords=state.passwords, email="admin@test.org", password=PASSWORD, name="A", role="admin")
    with TestClient(application, base_url="https://testserver") as test_client:
        yield test_client
    state.engine.dispose()
