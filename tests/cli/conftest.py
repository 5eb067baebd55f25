"""The commands run against real databases and real media: the server and vision tests' fixtures."""

from ..server.conftest import (  # noqa: F401  (fixtures, registered by import)
    backend,
    database_url,
    empty_database_url,
    pg_schemas,
    sqlite_template,
)
from ..vision.conftest import astronaut, media  # noqa: F401
