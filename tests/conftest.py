"""Settings of the whole test suite: how many pytest-xdist workers ``-n auto`` (pyproject's addopts) starts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The whole suite waits for a third of its time (on Chromium, on servers starting, on the pages' one-second ticks),
# so one worker more than the cores fills those waits. Measured on two cores (pytest, wall): 2 workers 4 min 20 s,
# 3 workers 3 min 48 s to 3 min 56 s, 4 workers 4 min 01 s (CPU-bound again). Never more than WORKERS: each runs
# its own Chromium, servers and PostgreSQL schemas.
WORKERS = 3

# Password hashing cheap enough for tests, in every server they run (in-process, child process, installed wheel):
# their sign-ins are set-up, not what they test. Production keeps Settings' defaults.
CHEAP_HASHING: dict[str, int] = {"argon2_time_cost": 1, "argon2_memory_kib": 1024}


def cheap_hashing_env() -> dict[str, str]:
    """:data:`CHEAP_HASHING` as the environment of a server process (``CLASSMOOD_ARGON2_...``)."""
    return {f"CLASSMOOD_{name.upper()}": str(value) for name, value in CHEAP_HASHING.items()}


def _names_files(config: pytest.Config) -> bool:
    """True when the command line names test files or test ids (not only folders): then one process is quicker
    than starting workers."""
    root = Path(config.invocation_params.dir)
    paths = [root / arg.split("::")[0] for arg in config.invocation_params.args if not arg.startswith("-")]
    return any(path.is_file() for path in paths)


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: WORKERS for the suite or folders of it (``pytest``, ``make test``, ``pytest tests/server``), none
    for ``pytest tests/x.py``.

    ``CLASSMOOD_TEST_WORKERS`` overrides it (0 = one process).
    """
    if "CLASSMOOD_TEST_WORKERS" in os.environ:
        return int(os.environ["CLASSMOOD_TEST_WORKERS"])
    return 0 if _names_files(config) else min(WORKERS, (os.cpu_count() or 1) + 1)


# Test folders whose files mostly wait (on Chromium, on the pages' one-second ticks, on servers of their own) rather
# than compute.
WAITING = ("browser", "benchmarks", "agent")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Order the files so that waiting ones alternate with computing ones, each kind in its own order.

    pytest-xdist hands each worker the next file in this order (``--dist loadfile``). In folder order, the workers
    would reach the browser tests together and wait side by side for minutes with the cores idle; interleaved, one
    worker's waits are the other's computing time. A worker leaving the browser folder closes its Chromium (package
    scope) and opens another when it comes back: a second, against tens of seconds of idle cores.
    """
    root = Path(config.rootpath)
    files: dict[Path, list[pytest.Item]] = {}
    for item in items:
        files.setdefault(Path(item.path), []).append(item)

    def waits(path: Path) -> bool:
        return path.relative_to(root).parts[1] in WAITING

    kinds = [[f for f in files if waits(f)], [f for f in files if not waits(f)]]
    # each file at its fraction of the way through its own kind: merged, the two kinds alternate evenly
    order = sorted((k / len(kind), path) for kind in kinds for k, path in enumerate(kind))
    items[:] = [item for _, path in order for item in files[path]]
