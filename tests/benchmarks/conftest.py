"""Benchmarks run small against the real server: the server and browser tests' fixtures."""

from ..browser.conftest import live_server  # noqa: F401  (fixtures, registered by import)
from ..server.conftest import backend  # noqa: F401
