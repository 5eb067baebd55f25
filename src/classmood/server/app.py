"""The FastAPI application factory.

>>> from classmood.config import Settings
>>> app = create_app(Settings(database_url="sqlite://", secret_key="s" * 32))
>>> app.title
'ClassMood'
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import Depends, FastAPI
from pydantic import BaseModel, Field

from classmood import __version__
from classmood.config import Settings, load_settings
from classmood.server.accounts.router import router as accounts_router
from classmood.server.accounts.service import DatabaseLogins
from classmood.server.alerts.router import router as alerts_router
from classmood.server.alerts.runner import run_alerts
from classmood.server.analytics.router import router as analytics_router
from classmood.server.body_limit import BodyLimit, RouteLimits
from classmood.server.courses.router import platform_router
from classmood.server.courses.router import router as courses_router
from classmood.server.db import make_engine, make_session_factory, upgrade
from classmood.server.errors import install_error_handlers
from classmood.server.faces.router import router as faces_router
from classmood.server.live.broker import make_broker
from classmood.server.live.presence import PresenceThrottle
from classmood.server.live.router import router as live_router
from classmood.server.observations.analysis import AnalysisPool
from classmood.server.observations.group_writer import GroupWriters
from classmood.server.observations.limits import RateLimiter, batch_body_limit, frame_body_limit
from classmood.server.observations.router import router as observations_router
from classmood.server.observations.standing import Standings
from classmood.server.ondevice import router as ondevice_router
from classmood.server.openapi import install_openapi
from classmood.server.proxies import install_proxy_trust
from classmood.server.report.router import router as report_router
from classmood.server.security import Passwords, Signer
from classmood.server.security_headers import SecurityHeaders
from classmood.server.sessions.cache import ParticipantCache
from classmood.server.sessions.router import router as sessions_router
from classmood.server.state import ServerState
from classmood.server.students.router import router as students_router
from classmood.server.topics.router import router as topics_router
from classmood.server.validation import check_parameters
from classmood.server.web import mount_web

log = logging.getLogger(__name__)


class HealthOut(BaseModel):
    """Answer of ``GET /api/health``."""

    status: Literal["ok"] = "ok"
    database: str = Field(description="the database dialect: sqlite or postgresql")
    version: str


def build_state(settings: Settings) -> ServerState:
    """Engine, migrations, signer (with the login registry), password hasher, live broker, and each feature's
    running state: analysis pool, rate limiter, group writers, presence throttle, participant cache."""
    engine = make_engine(settings.database_url)
    if settings.auto_migrate:
        upgrade(engine)
    sessions = make_session_factory(engine)
    broker = make_broker(settings.redis_url)
    return ServerState(
        settings=settings, engine=engine, sessions=sessions,
        # login cookies end with logout, server-side
        signer=Signer(settings.secret_key, logins=DatabaseLogins(sessions)),
        passwords=Passwords(settings.argon2_time_cost, settings.argon2_memory_kib), broker=broker,
        analysis=AnalysisPool(settings.analysis_threads, settings.analysis_max_side, settings.analysis_max_age_s),
        rate=RateLimiter(settings.max_fps), writers=GroupWriters(sessions), presence=PresenceThrottle(sessions, broker),
        standings=Standings(settings.live_check_s),
        participants=ParticipantCache())


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the ClassMood server: JSON API under /api, live events, and the web pages if present."""
    settings = (settings or load_settings()).resolved()
    state = build_state(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        alerts = asyncio.create_task(run_alerts(state))  # alert rules fire with no dashboard open
        yield
        alerts.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await alerts
        await state.broker.close()
        state.analysis.close()

    # /docs is served locally by the web package (FastAPI's loads Swagger UI from a CDN); no ReDoc.
    app = FastAPI(title="ClassMood", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Facial-emotion analytics for online classes. See docs/API.md.",
                  dependencies=[Depends(check_parameters)])
    app.state.cm = state
    install_error_handlers(app)
    install_openapi(app)
    app.add_middleware(BodyLimit, limits=RouteLimits(frame=frame_body_limit(settings),
                                                     batch=batch_body_limit(settings)))
    app.add_middleware(SecurityHeaders)
    install_proxy_trust(app, settings.trusted_proxies)  # outermost: the client's address before anything reads it
    for router in (accounts_router, courses_router, sessions_router, observations_router, analytics_router,
                   live_router, ondevice_router, topics_router, students_router, platform_router,
                   faces_router, alerts_router, report_router):
        app.include_router(router)

    @app.get("/api/health", tags=["health"])
    def health() -> HealthOut:
        """Liveness: the server answers and knows its database dialect."""
        return HealthOut(database=state.engine.dialect.name, version=__version__)

    mount_web(app, settings)
    return app


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """The uvicorn settings every ClassMood server runs with (``classmood serve`` and the benchmarks).

    - ``ws_max_size``: the largest student-stream message that can be valid (a base64 frame at the frame
      limit, or a full score batch), so a bigger one is refused by the protocol before it is buffered whole;
    - ``ws_per_message_deflate`` off: browsers ask for compression, and a score message of a few hundred bytes
      gains nothing from it while deflate costs CPU on every message of thousands of students (and the
      load benchmark's clients do not ask for it, so with it on the benchmark would not measure what
      browsers cost);
    - ``proxy_headers`` off: the app believes ``X-Forwarded-For`` from ``CLASSMOOD_TRUSTED_PROXIES`` only
      (:mod:`classmood.server.proxies`), never from any local peer as uvicorn would.

    >>> uvicorn_options(Settings(secret_key="x" * 32))["ws_per_message_deflate"]
    False
    """
    frame_text = settings.max_frame_bytes * 4 // 3 + 1024  # base64 and the JSON around it
    batch_text = settings.batch_max * 1024  # far above a score's ~300 bytes of JSON
    return {"ws_max_size": max(frame_text, batch_text) + 64 * 1024, "ws_per_message_deflate": False,
            "proxy_headers": False}


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (several workers): settings from CLASSMOOD_* variables."""
    os.environ.setdefault("CLASSMOOD_AUTO_MIGRATE", "0")
    return create_app(load_settings())
