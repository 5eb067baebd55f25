"""Settings of the whole test suite: how many pytest-xdist workers ``-n auto`` (pyproject's addopts) starts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The whole suite mostly waits (on Chromium, on servers starting, on the pages' one-second ticks), so two workers
# overlap the waits even on two cores. More would be CPU-bound there: the model runs, and Chromium analyses.
WORKERS = 2

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
    return 0 if _names_files(config) else min(WORKERS, os.cpu_count() or 1)
