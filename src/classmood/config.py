"""ClassMood's one settings object, read from ``CLASSMOOD_*`` environment variables.

Settings are built by :func:`load_settings` (or ``Settings(...)`` in tests), never at import time,
and handed to :func:`classmood.server.app.create_app`. :meth:`Settings.resolved` fills what has a
computed default: the SQLite database file and the secret key, generated once and kept in the
data folder so that cookies and tokens survive a restart.

>>> s = Settings(data_dir="/tmp/cm-doc", secret_key="x" * 32).resolved()
>>> s.database_url
'sqlite:////tmp/cm-doc/classmood.db'
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from classmood.vision.tracking import DEFAULT_SMOOTH_WINDOW_S

SECRET_FILE = "secret_key"
MIN_SECRET_LENGTH = 32
# The longest smoothing window the dashboard may use or ask the analytics for: an hour is a summary, not "now".
MAX_SMOOTH_WINDOW_S = 3600.0


class Settings(BaseSettings):
    """Everything a ClassMood server can be told; each field is also ``CLASSMOOD_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="CLASSMOOD_", extra="ignore", frozen=True)

    data_dir: Path = Field(default=Path("classmood-data"), description="database and secret key live here")
    database_url: str = Field(default="", description="SQLAlchemy URL; empty: a SQLite file in data_dir")
    secret_key: str = Field(default="", description="signs cookies and tokens; empty: generated and kept in data_dir")
    dev: bool = Field(default=False, description="development mode: cookies without the Secure flag")
    public_url: str = Field(default="", description="base URL for join links, e.g. https://class.example.org")
    auto_migrate: bool = Field(default=True, description="run Alembic migrations when the app is created")

    # privacy
    aggregate_only: bool = Field(default=False, description="default of new sessions: class-level figures only")
    min_faces: int = Field(default=5, ge=1, description="aggregate-only figures need this many distinct participants")
    private_cell_s: int = Field(
        default=30, ge=1, le=3600,
        description="aggregate-only figures are sums of whole cells of N s (a divisor of 3600) with min_faces each")
    private_seal_s: float = Field(
        default=10.0, ge=0, le=600,
        description="an aggregate-only cell is shown N s after it ends (scores still being stored)")
    retention_days: int = Field(default=180, ge=0, description="`classmood purge` deletes older data; 0 keeps all")
    store_frames: bool = Field(default=False, description="keep received frames as files in data_dir/frames (off!)")

    # ingestion limits
    max_frame_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    max_frame_pixels: int = Field(default=2560 * 1600, ge=64 * 64)
    max_fps: float = Field(default=2.0, gt=0, description="frames per second and participant before 429")
    batch_max: int = Field(default=500, ge=1, description="observations per batch request")
    frame_interval_s: float = Field(default=1.0, gt=0, description="how often student pages send a frame")
    analysis_threads: int = Field(default=2, ge=1, description="frames analysed at once (thread pool size)")
    analysis_max_side: int = Field(default=480, ge=64, description="frames are shrunk to this side before detection")
    analysis_mode: Literal["device", "server"] = Field(
        default="device", description="default of new sessions: analyse on the student's device or on the server")
    allow_server_fallback: bool = Field(
        default=False, description="default of new sessions: a device that cannot run the model may send frames")
    analysis_max_age_s: float = Field(default=3.0, gt=0, description="frames waiting longer are shed, never analysed")

    # accounts
    admin_email: str = Field(default="", description="first admin created by `classmood serve` on an empty database")
    admin_password: str = Field(default="", description="its password; empty: generated and printed")
    session_ttl_s: int = Field(default=12 * 3600, ge=60, description="lifetime of a browser login")
    token_ttl_s: int = Field(default=30 * 24 * 3600, ge=60, description="lifetime of API and participant tokens")
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=8)

    # deployment
    redis_url: str = Field(default="", description="redis://… for live events across several server processes")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1)
    trusted_proxies: str = Field(
        default="", description="reverse proxies (addresses or networks, comma-separated) whose X-Forwarded-For "
                                "and X-Forwarded-Proto are believed; empty: none, the peer's address counts")

    # live dashboard
    live_window_s: float = Field(default=30.0, gt=0, description="the 'current emotions' chart covers the last N s")
    alert_negative_share: float = Field(default=0.5, ge=0, le=1,
                                        description="alert when Angry+Disgust+Fear+Sad exceed this share ...")
    smooth_window_s: float = Field(
        default=DEFAULT_SMOOTH_WINDOW_S, ge=0, le=MAX_SMOOTH_WINDOW_S,
        description="'now' views and student tiles average each face's readings over N s; 0: the raw last one")
    alert_after_s: float = Field(default=60.0, ge=0, description="... for at least this long")
    alert_check_s: float = Field(default=5.0, gt=0, le=3600,
                                 description="how often the server evaluates the alert rule of every live session")
    live_check_s: float = Field(
        default=2.0, gt=0, le=60,
        description="how often an open dashboard stream checks its login again and a student stream its session: "
                    "a stream ends about this long after its right ended")

    def resolved(self) -> Settings:
        """A copy with the database URL and the secret key filled in (the key file is created if needed)."""
        updates: dict[str, Any] = {}
        if not self.database_url:
            updates["database_url"] = f"sqlite:///{self.data_dir.absolute() / 'classmood.db'}"
        if not self.secret_key:
            updates["secret_key"] = persistent_secret(self.data_dir)
        return self.model_copy(update=updates) if updates else self

    @field_validator("trusted_proxies")
    @classmethod
    def _named_proxies(cls, value: str) -> str:
        # "*" would let every client name its own address, which the login throttle counts.
        if "*" in value:
            raise ValueError("trusted_proxies must name the proxies (addresses or networks), not '*'")
        return value

    @field_validator("private_cell_s")
    @classmethod
    def _cells_tile_hours(cls, value: int) -> int:
        # Hour-of-day figures sum whole cells: a cell must never straddle two hours.
        if 3600 % value:
            raise ValueError("private_cell_s must divide 3600 (e.g. 10, 15, 30, 60, 300)")
        return value

    @property
    def is_sqlite(self) -> bool:
        """True when the database is a SQLite file."""
        return self.database_url.startswith("sqlite")


def persistent_secret(data_dir: Path) -> str:
    """Read ``data_dir/secret_key``, creating it (mode 0600) with a random key the first time."""
    path = data_dir / SECRET_FILE
    if path.is_file():
        key = path.read_text().strip()
        if len(key) >= MIN_SECRET_LENGTH:
            return key
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    # Create with restrictive permissions from the start: the key forges any login.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with ``overrides`` (e.g. command-line options) on top, resolved.

    >>> load_settings(data_dir="/tmp/cm-doc", secret_key="y" * 32).min_faces
    5
    """
    given = {key: value for key, value in overrides.items() if value is not None}
    return Settings(**given).resolved()
