"""Benchmarks run small against the real server: the server and browser tests' fixtures."""

from collections.abc import Iterator

import pytest

from ..browser.conftest import live_server  # noqa: F401  (fixtures, registered by import)
from ..conftest import cheap_hashing_env
from ..server.conftest import backend  # noqa: F401


@pytest.fixture(autouse=True)
def cheap_logins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Server processes that a benchmark starts hash passwords cheaply (as the server tests' apps do): their
    logins are set-up, not what is measured, and each costs a server a fraction of a CPU second otherwise."""
    for name, value in cheap_hashing_env().items():
        monkeypatch.setenv(name, value)
    yield
