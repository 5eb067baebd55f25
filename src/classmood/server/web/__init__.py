"""ClassMood's browser pages: server-rendered Jinja2 templates, small vanilla-JS scripts, plotly.js from npm (no CDN).

The pages are thin shells: each renders a template, and its script talks to the JSON API and the live
channel of the other server packages (the contract is ``docs/API.md``). Nothing here reads the database.

>>> from fastapi import FastAPI
>>> from classmood.config import Settings
>>> app = FastAPI()
>>> mount_web(app, Settings())
>>> any(getattr(r, "path", "") == "/teacher" for r in app.routes)
True
"""

from __future__ import annotations

from fastapi import FastAPI

from classmood.config import Settings
from classmood.server.web.docs import build_docs_router
from classmood.server.web.pages import build_router, build_static_router, render

__all__ = ["mount_web"]


def mount_web(app: FastAPI, settings: Settings) -> None:
    """Add the page routes and the static files (CSS, JS, ``/static/vendor/plotly.min.js``) to ``app``.

    The pages read the dashboard's settings (``live_window_s``, ``smooth_window_s``, ``alert_negative_share``,
    ``alert_after_s``).
    """
    docs = build_docs_router(render)
    if docs is not None:  # before the generic /static route, which would shadow the Swagger UI files
        app.include_router(docs)
    app.include_router(build_static_router())
    app.include_router(build_router(settings))
