"""Overload protection of server analysis: latest frame wins per student, no frame older than max_age_s."""

from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import Future
from typing import Any

import pytest

from classmood.server.observations.analysis import AnalysisPool, FaceScore, FrameShed

from .conftest import World


def _outcome(future: Future[list[FaceScore]]) -> str:
    try:
        return f"faces={len(future.result(timeout=120))}"
    except FrameShed:
        return "shed"


@pytest.fixture(scope="module")
def pool() -> Any:
    p = AnalysisPool(threads=1, max_age_s=30.0)
    yield p
    p.close()


def test_latest_frame_wins_per_student(pool: AnalysisPool, astronaut_jpeg: bytes) -> None:
    pool.analyze_sync(astronaut_jpeg)  # models loaded: the figures below are about the queue only
    before = (pool.counts.analysed, pool.counts.superseded)
    blocker = pool.submit(astronaut_jpeg, key="busy")  # keeps the one worker busy
    burst = [pool.submit(astronaut_jpeg, key="ann") for _ in range(6)]
    other = pool.submit(astronaut_jpeg, key="bob")
    outcomes = [_outcome(f) for f in burst]
    assert outcomes[:-1] == ["shed"] * 5 and outcomes[-1] == "faces=1"  # only Ann's newest frame is analysed
    assert _outcome(other) == "faces=1" and _outcome(blocker) == "faces=1"  # Bob is not shed for Ann's burst
    assert (pool.counts.analysed - before[0], pool.counts.superseded - before[1]) == (3, 5)


def test_frames_older_than_max_age_are_never_analysed(astronaut_jpeg: bytes) -> None:
    pool = AnalysisPool(threads=1, max_age_s=0.05)
    try:
        pool.analyze_sync(astronaut_jpeg)
        futures = [pool.submit(astronaut_jpeg, key=f"student-{i}") for i in range(8)]
        outcomes = [_outcome(f) for f in futures]
        assert outcomes[0] == "faces=1" and "shed" in outcomes[1:]  # queued behind a ~50 ms analysis: too old
        assert pool.counts.stale == outcomes.count("shed") and pool.counts.analysed == outcomes.count("faces=1")
        # A frame that spent long on its way (its sender's clock says so, relative to its earlier frames) too.
        assert _outcome(pool.submit(astronaut_jpeg, key="eve", sent_ts=time.time())) == "faces=1"
        assert _outcome(pool.submit(astronaut_jpeg, key="eve", sent_ts=time.time() - 10)) == "shed"
    finally:
        pool.close()


def test_a_flood_of_one_student_is_shed_and_counted(world: World, astronaut_jpeg: bytes, app: Any) -> None:
    """Concurrent frames of one student over HTTP: shed ones say so and store nothing; the rest store once."""
    import httpx

    async def flood() -> list[dict[str, Any]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            headers = {**world.student, "Content-Type": "image/jpeg"}
            url = f"/api/sessions/{world.session_id}/frames"
            calls = [client.post(url, content=astronaut_jpeg, headers=headers,
                                 params={"client_id": str(uuid.uuid4()), "ts": time.time()}) for _ in range(8)]
            replies = await asyncio.gather(*calls)
        assert all(r.status_code == 200 for r in replies), [r.text for r in replies]
        return [r.json() for r in replies]

    replies = asyncio.run(flood())
    shed = [r for r in replies if r["shed"]]
    assert shed and all(r["faces"] == 0 and not r["observations"] for r in shed)
    stored = world.client.get("/api/me/observations", headers=world.student).json()["count"]
    assert stored == sum(r["faces"] for r in replies) >= 1
    stats = world.client.get("/api/analysis/stats", headers=world.teacher_a).json()
    assert stats["shed"] >= len(shed) and stats["analysed"] >= 1
    assert world.client.get("/api/analysis/stats").status_code == 401


def test_each_analysis_runs_on_one_thread(pool: AnalysisPool, astronaut_jpeg: bytes) -> None:
    # The pool's workers are the parallelism; onnxruntime's own threads on top of them spun on the cores the
    # workers and the event loop need (most of a loaded server's CPU went to them).
    pool.analyze_sync(astronaut_jpeg)
    analyzer = pool._get()._analyzer  # type: ignore[attr-defined]
    sessions = [analyzer.detector._session, analyzer.classifier._session]
    assert [s.get_session_options().intra_op_num_threads for s in sessions] == [1, 1]
