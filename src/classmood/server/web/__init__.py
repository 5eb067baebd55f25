"""ClassMood's browser pages: server-rendered Jinja2 templates, small vanilla-JS scripts, plotly.js from the wheel.

The pages are thin shells: each renders a template, and its script talks to the JSON API and the live
channel of the other server packages (the contract is ``docs/API.md``). Nothing here reads the database.

>>> from fastapi import FastAPI
>>> app = FastAPI()
>>> mount_web(app, object())
>>> any(getattr(r, "path", "") == "/teacher" for r in app.routes)
True
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from classmood.server.web.docs import build_docs_router
from classmood.server.web.pages import build_router, build_static_router, render

__all__ = ["mount_web"]


def mount_web(app: FastAPI, settings: Any) -> None:
    """Add the page routes and the static files (CSS, JS, ``/static/vendor/plotly.min.js``) to ``app``.

    ``settings`` is the server's Settings object; the pages read only a few optional attributes
    (``dev``, ``live_window_s``, ``alert_negative_share``, ``alert_after_s``) and fall back to defaults.
    """
    docs = build_docs_router(render)
    if docs is not None:  # before the generic /static route, which would shadow the Swagger UI files
        app.include_router(docs)
    app.include_router(build_static_router())
    app.include_router(build_router(settings))
