"""The agent runs against the real server on both databases: the server tests' database fixtures."""

from ..server.conftest import backend, database_url, pg_schemas, sqlite_template  # noqa: F401  (fixtures)
