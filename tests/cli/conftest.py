"""The commands run against real databases and real media: the server and vision tests' fixtures."""

from ..server.conftest import backend, database_url  # noqa: F401  (fixtures, registered by import)
from ..vision.conftest import astronaut, media  # noqa: F401
