"""``classmood bench server``: ingestion rate, frames/s and analytics query times on SQLite and PostgreSQL.

Measured for each backend, on a scratch database (a temporary SQLite file, or a PostgreSQL schema
that is dropped afterwards):

* observations/s stored through the service layer (``insert_observations``, batches of 500,
  ``INSERT ... ON CONFLICT DO NOTHING RETURNING``) and through HTTP (``POST .../observations`` on a
  real uvicorn server);
* frames/s through ``POST .../frames`` (astronaut at 640x480: decode, detect, classify, store);
* histogram and timeline query times of one class session after bulk-loading ``sizes`` observations
  (COPY on PostgreSQL, executemany on SQLite), laid out as class hours of 100,000 observations
  (about 28 students at one frame a second).
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from classmood.benchmarks.servers import tls
from classmood.labels import LABELS

if TYPE_CHECKING:
    from classmood.server.state import ServerState

PER_SESSION = 100_000
PARTICIPANTS = 30
BATCH = 500
BASE_TS = 1_700_000_000.0


@dataclass(frozen=True)
class ServerBenchConfig:
    """What to measure; ``sizes`` are totals of stored observations for the query timings."""

    sizes: tuple[int, ...] = (1_000_000,)
    backends: tuple[str, ...] = ("sqlite", "postgresql")
    postgres_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    ingest_n: int = 50_000
    frames: int = 40
    query_repeats: int = 15
    per_session: int = PER_SESSION


@contextlib.contextmanager
def scratch_database(backend: str, postgres_url: str, folder: Path) -> Iterator[str]:
    """A database URL for one run: a SQLite file in ``folder`` or a fresh PostgreSQL schema (dropped after)."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'bench.db'}"
        return
    import psycopg
    from sqlalchemy.engine import make_url

    schema = f"cm_bench_{uuid.uuid4().hex[:10]}"
    plain = make_url(postgres_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{postgres_url}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _settings(url: str, folder: Path) -> Any:
    from classmood.config import Settings

    return Settings(database_url=url, data_dir=folder, secret_key="b" * 40, dev=True, max_fps=10_000,
                    batch_max=1000, argon2_time_cost=1, argon2_memory_kib=1024)


def _world(state: ServerState, sessions: int, participants: int) -> list[tuple[int, list[int]]]:
    """A teacher, a course, ``sessions`` live sessions with ``participants`` each: [(session id, [participant ids])]."""
    from classmood.server.accounts.service import create_user
    from classmood.server.courses.service import create_course
    from classmood.server.sessions.service import create_session, join_session, start_session

    out = []
    with state.sessions() as db:
        teacher = create_user(db, passwords=state.passwords, email=f"t{uuid.uuid4().hex[:6]}@bench.org",
                              password="benchmark", name="Bench")
        course = create_course(db, teacher=teacher, title="Bench course")
        for k in range(sessions):
            # Server analysis: the frame-endpoint figures need a session that takes frames.
            created = create_session(db, course=course, title=f"S{k}", aggregate_only=False, analysis_mode="server")
            session = start_session(db, session=created)
            # The ingestion figures send the last hour's observations: the session went live before them.
            session.started_at = session.started_at - timedelta(hours=2) if session.started_at else None
            db.commit()
            people = [join_session(db, code=session.code, display_name=f"P{i}").id for i in range(participants)]
            out.append((session.id, people))
    return out


def _probs(rng: np.random.Generator, n: int) -> np.ndarray:
    raw = rng.dirichlet(np.full(len(LABELS), 0.6), size=n)
    return raw.astype(np.float64)


def _observations(rng: np.random.Generator, n: int, start: float) -> list[Any]:
    from classmood.server.observations.service import NewObservation

    probs = _probs(rng, n)
    return [NewObservation(uuid.uuid4(), start + i * 0.01, tuple(map(float, p)), 0.9) for i, p in enumerate(probs)]


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def bench_service_ingest(state: ServerState, session_id: int, participant_id: int, n: int) -> float:
    """Observations/s through ``insert_observations`` in batches of 500."""
    from classmood.server.observations.service import insert_observations

    items = _observations(np.random.default_rng(1), n, time.time() - 3600)
    started = time.perf_counter()
    with state.sessions() as db:
        for i in range(0, n, BATCH):
            insert_observations(db, session_id=session_id, participant_id=participant_id, items=items[i : i + BATCH])
    return _rate(n, time.perf_counter() - started)


def bench_http_ingest(url: str, state: ServerState, session_id: int, participant_ids: list[int], n: int) -> float:
    """Observations/s through ``POST /api/sessions/{id}/observations`` from one client per participant."""
    import httpx

    rng = np.random.default_rng(2)
    clients = len(participant_ids)
    per_client = n // clients
    start = time.time() - 3600

    def send(pid: int) -> int:
        token = state.signer.sign("participant", {"pid": pid, "sid": session_id}, 3600)
        probs = _probs(rng, per_client)
        bodies = [[{"id": str(uuid.uuid4()), "ts": start + j * 0.01, "probs": dict(zip(LABELS, map(float, p),
                                                                                       strict=True))}
                   for j, p in enumerate(probs[i : i + BATCH], start=i)] for i in range(0, per_client, BATCH)]
        sent = 0
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60, verify=tls()) as http:
            for body in bodies:
                response = http.post(f"/api/sessions/{session_id}/observations", json={"observations": body})
                response.raise_for_status()
                sent += response.json()["accepted"]
        return sent

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        total = sum(pool.map(send, participant_ids))
    return _rate(total, time.perf_counter() - started)


def astronaut_bgr(width: int = 640, height: int = 480) -> npt.NDArray[np.uint8]:
    """scikit-image's astronaut (a smiling face) scaled to ``height`` on a grey webcam-sized canvas, BGR."""
    import cv2
    from skimage import data

    face = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    scale = height / face.shape[0]
    face = cv2.resize(face, (round(face.shape[1] * scale), height))
    canvas = np.full((height, width, 3), 90, np.uint8)
    left = (width - face.shape[1]) // 2
    canvas[:, left : left + face.shape[1]] = face
    return canvas


def astronaut_jpeg(width: int = 640, height: int = 480) -> bytes:
    """:func:`astronaut_bgr` as JPEG."""
    import cv2

    return cv2.imencode(".jpg", astronaut_bgr(width, height), [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()


def bench_frames(url: str, state: ServerState, session_id: int, participant_ids: list[int],
                 frames: int) -> dict[str, float]:
    """Frames/s through ``POST /api/sessions/{id}/frames``, one client and as many as analysis threads."""
    import httpx

    jpeg = astronaut_jpeg()

    def post(pid: int, count: int) -> int:
        token = state.signer.sign("participant", {"pid": pid, "sid": session_id}, 3600)
        faces = 0
        with httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {token}",
                                                              "Content-Type": "image/jpeg"}, verify=tls()) as http:
            for _ in range(count):
                response = http.post(f"/api/sessions/{session_id}/frames", content=jpeg)
                response.raise_for_status()
                faces += response.json()["faces"]
        return faces

    post(participant_ids[0], 2)  # warm up: models load on the first frame
    out: dict[str, float] = {}
    for clients in (1, max(2, state.settings.analysis_threads)):
        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            faces = sum(pool.map(post, participant_ids[:clients], [frames // clients] * clients))
        out[f"frames_per_s_{clients}_clients"] = _rate(frames // clients * clients, time.perf_counter() - started)
        out[f"faces_found_{clients}_clients"] = faces
    return out


def _bulk_rows(rng: np.random.Generator, sessions: list[tuple[int, list[int]]], first_id: int,
               per_session: int) -> Iterator[tuple[Any, ...]]:
    """Rows of synthetic class hours, ``per_session`` per session, as tuples in column order."""
    for k, (session_id, people) in enumerate(sessions):
        probs = _probs(rng, per_session)
        labels = probs.argmax(axis=1)
        ts = BASE_TS + k * 3600 + np.sort(rng.uniform(0, 3600, per_session))
        for j in range(per_session):
            row_id = first_id + k * per_session + j
            yield (row_id, session_id, people[j % len(people)], uuid.UUID(int=row_id), float(ts[j]), int(labels[j]),
                   0.9, "frame", *probs[j].tolist(), float(ts[j]))  # sent at once: arrived when seen


_COLUMNS = ("id", "session_id", "participant_id", "client_id", "ts", "label", "score", "source",
            "p_angry", "p_disgust", "p_fear", "p_happy", "p_neutral", "p_sad", "p_surprise", "received_at")
_SECONDARY = ("ix_observations_session_ts", "ix_observations_participant_ts", "ix_observations_session_received",
              "uq_observations_participant_client")


def bulk_load(state: ServerState, sessions: list[tuple[int, list[int]]], first_id: int, per_session: int) -> float:
    """Load ``per_session`` rows per session (COPY / executemany) without indexes, then index; rows/s."""
    from sqlalchemy import Table, text

    from classmood.server.observations.models import Observation

    table = Observation.__table__
    assert isinstance(table, Table)
    indexes = [ix for ix in table.indexes if ix.name in _SECONDARY]
    rows = _bulk_rows(np.random.default_rng(first_id % 2**32), sessions, first_id, per_session)
    started = time.perf_counter()
    with state.engine.begin() as conn:
        for ix in indexes:
            conn.execute(text(f"DROP INDEX IF EXISTS {ix.name}"))
        raw = conn.connection.driver_connection
        assert raw is not None  # a live pooled connection always has its DBAPI connection
        if state.engine.dialect.name == "postgresql":
            with raw.cursor() as cur, cur.copy(f"COPY observations ({', '.join(_COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join("?" * len(_COLUMNS))
            sql = f"INSERT INTO observations ({', '.join(_COLUMNS)}) VALUES ({marks})"
            raw.executemany(sql, ((*r[:3], r[3].hex, *r[4:]) for r in rows))
        for ix in indexes:
            ix.create(conn)
    _vacuum(state.engine)
    return _rate(len(sessions) * per_session, time.perf_counter() - started)


def _vacuum(engine: Any) -> None:
    # What autovacuum does soon after a load: statistics, and on PostgreSQL the visibility map
    # that lets histogram queries read the covering index without visiting the table.
    from sqlalchemy import text

    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE observations" if engine.dialect.name == "postgresql" else "ANALYZE"))


def _median_ms(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm the caches: dashboards ask the same question every few seconds
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def bench_queries(state: ServerState, session_id: int, start_ts: float, repeats: int) -> dict[str, float]:
    """Median milliseconds of the dashboard's queries on one class hour."""
    from classmood.server.analytics import queries

    scope = queries.Scope(session_id=session_id)
    last_minute = queries.Scope(session_id=session_id, since=start_ts + 3540)
    with state.sessions() as db:
        return {
            "histogram_ms": _median_ms(lambda: queries.histogram(db, scope=scope), repeats),
            "histogram_last_60s_ms": _median_ms(lambda: queries.histogram(db, scope=last_minute), repeats),
            "timeline_60s_buckets_ms": _median_ms(
                lambda: queries.timeline(db, scope=scope, bucket_s=60, lo=start_ts, hi=start_ts + 3599), repeats),
            "participants_ms": _median_ms(lambda: queries.participant_summaries(db, scope=scope), repeats),
            **bench_private_queries(state, session_id, start_ts, repeats),
        }


def bench_private_queries(state: ServerState, session_id: int, start_ts: float, repeats: int) -> dict[str, float]:
    """The same hour as an aggregate-only session, through the service: sealing its 120 cells of 30 s once,
    then the dashboard's questions, answered from the cells."""
    from sqlalchemy import delete, update

    from classmood.server.analytics import service
    from classmood.server.analytics.models import AggregateCell, AggregateSeal
    from classmood.server.analytics.service import Policy, Window
    from classmood.server.sessions.models import ClassSession

    rules = Policy(min_faces=5, cell_s=30, seal_s=10.0)

    def privately(on: bool) -> None:
        with state.sessions() as db:
            db.execute(update(ClassSession).where(ClassSession.id == session_id).values(aggregate_only=on))
            for table in (AggregateCell, AggregateSeal):
                db.execute(delete(table).where(table.session_id == session_id))
            db.commit()

    privately(True)
    try:
        with state.sessions() as db:
            session = db.get(ClassSession, session_id)
            assert session is not None

            def histogram(window: Window, smooth_s: float | None = None) -> Any:
                return service.session_histogram(db, session=session, window=window, policy=rules, smooth_s=smooth_s)

            started = time.perf_counter()
            histogram(Window())
            sealing = (time.perf_counter() - started) * 1000
            return {
                "private_seal_hour_ms": sealing,
                "private_histogram_ms": _median_ms(lambda: histogram(Window()), repeats),
                "private_histogram_last_cell_ms": _median_ms(lambda: histogram(Window(since=start_ts + 3560), 3.0),
                                                             repeats),
                "private_timeline_60s_buckets_ms": _median_ms(lambda: service.session_timeline(
                    db, session=session, window=Window(since=start_ts, until=start_ts + 3600), bucket_s=60,
                    policy=rules), repeats),
                "platform_total_ms": _median_ms(lambda: service.platform_histogram(db, window=Window(), policy=rules),
                                                repeats),
            }
    finally:
        privately(False)


def run_backend(backend: str, config: ServerBenchConfig, log: Callable[[str], None]) -> dict[str, Any]:
    """All measurements on one backend."""
    from classmood.server.app import create_app
    from classmood.server.threaded import ThreadedServer

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, scratch_database(backend, config.postgres_url, Path(tmp)) as url:
        app = create_app(_settings(url, Path(tmp)))
        state = app.state.cm
        [(live_id, people)] = _world(state, 1, 8)
        out["ingest_service_obs_per_s"] = bench_service_ingest(state, live_id, people[0], config.ingest_n)
        log(f"[{backend}] service ingestion: {out['ingest_service_obs_per_s']:,.0f} obs/s")
        with ThreadedServer(app) as server:
            out["ingest_http_obs_per_s_1_client"] = bench_http_ingest(server.url, state, live_id, people[1:2],
                                                                      config.ingest_n)
            out["ingest_http_obs_per_s_4_clients"] = bench_http_ingest(server.url, state, live_id, people[2:6],
                                                                       config.ingest_n)
            log(f"[{backend}] HTTP ingestion: {out['ingest_http_obs_per_s_1_client']:,.0f} obs/s (1 client), "
                f"{out['ingest_http_obs_per_s_4_clients']:,.0f} obs/s (4 clients)")
            if config.frames:
                out.update(bench_frames(server.url, state, live_id, people[6:8], config.frames))
                log(f"[{backend}] frames: {out['frames_per_s_1_clients']:.1f}/s (1 client)")
        out["queries"] = _bench_sizes(state, config, backend, log)
    return out


def _bench_sizes(state: ServerState, config: ServerBenchConfig, backend: str,
                 log: Callable[[str], None]) -> dict[str, Any]:
    loaded, next_id, results = 0, 10_000_000_000, {}
    per = config.per_session
    for size in sorted(config.sizes):
        count = max(1, (size - loaded) // per)
        sessions = _world(state, count, PARTICIPANTS)
        rate = bulk_load(state, sessions, next_id, per)
        next_id += count * per
        loaded += count * per
        # The timed session sits in the middle of the newest batch of class hours.
        k = count // 2
        figures = bench_queries(state, sessions[k][0], BASE_TS + k * 3600, config.query_repeats)
        results[str(loaded)] = {"bulk_load_rows_per_s": rate, **figures}
        log(f"[{backend}] {loaded:,} stored: " + ", ".join(f"{key} {value:,.1f}" for key, value in
                                                             results[str(loaded)].items()))
    return results


def run_server_bench(config: ServerBenchConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Measure every backend in ``config``; skip PostgreSQL with a note when it is unreachable."""
    result: dict[str, Any] = {"config": dict(config.__dict__), "backends": {}}
    for backend in config.backends:
        try:
            result["backends"][backend] = run_backend(backend, config, log)
        except ImportError as exc:
            result["backends"][backend] = {"skipped": str(exc)}
        except Exception as exc:  # e.g. PostgreSQL not running: report, go on with the others
            if backend != "postgresql":
                raise
            result["backends"][backend] = {"skipped": f"{type(exc).__name__}: {exc}"}
        log(f"[{backend}] done")
    return result


def format_server_bench(result: dict[str, Any]) -> str:
    """A plain-text table of the figures, with the goals next to them."""
    lines = ["ClassMood server benchmark (goals: >=20,000 obs/s into PostgreSQL; histogram <=50 ms at 10M)"]
    for backend, figures in result["backends"].items():
        lines.append(f"\n{backend}")
        if "skipped" in figures:
            lines.append(f"  skipped: {figures['skipped']}")
            continue
        for key, value in figures.items():
            if key != "queries":
                lines.append(f"  {key:34s} {value:12,.1f}")
        for size, stats in figures["queries"].items():
            lines.append(f"  at {int(size):,} stored observations ({result['config']['per_session']:,} per session):")
            for key, value in stats.items():
                lines.append(f"    {key:32s} {value:12,.1f}")
    return "\n".join(lines)
