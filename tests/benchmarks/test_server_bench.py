"""`classmood bench server` on tiny sizes: every figure is produced and plausible."""

from __future__ import annotations

import pytest

from classmood.benchmarks.server import ServerBenchConfig, format_server_bench, run_server_bench

from ..server.conftest import PG_URL


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_server_bench_runs_small(backend: str) -> None:
    # Tiny: two sizes (the second loads on top of the first), two frames per client count (each one a face
    # detection and a model run); the figures are produced the same way as at full size.
    config = ServerBenchConfig(sizes=(500, 1000), backends=(backend,), postgres_url=PG_URL, ingest_n=400, frames=2,
                               query_repeats=2, per_session=500)
    lines: list[str] = []
    result = run_server_bench(config, log=lines.append)
    figures = result["backends"][backend]
    assert "skipped" not in figures, figures
    assert figures["ingest_service_obs_per_s"] > 0 and figures["ingest_http_obs_per_s_4_clients"] > 0
    assert figures["faces_found_1_clients"] == 2  # the astronaut is found in every frame
    assert set(figures["queries"]) == {"500", "1000"}
    for stats in figures["queries"].values():
        assert stats["histogram_ms"] > 0 and stats["timeline_60s_buckets_ms"] > 0
    text = format_server_bench(result)
    assert backend in text and "histogram_ms" in text
