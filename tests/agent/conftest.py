"""The agent runs against the real server on both databases: the server tests' database fixtures."""

from ..server.conftest import backend, database_url  # noqa: F401  (fixtures, registered by import)
