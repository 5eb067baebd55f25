"""Page routes: server-rendered shells whose scripts fetch their data from the JSON API.

Pages carry no data and need no login themselves: the scripts call the API with the session cookie
and send a visitor without one to the sign-in form, so authorisation lives in one place (the API).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from classmood.config import Settings
from classmood.labels import EMOTION_COLORS, LABELS, NEGATIVE
from classmood.server.analytics.service import CHART_MIN_OBSERVATIONS, CHART_MIN_STUDENTS
from classmood.server.observations.stream import close_codes
from classmood.server.security_headers import CROSS_ORIGIN_ISOLATED
from classmood.server.web.assets import (
    PLOTLY_URL,
    TEMPLATES_DIR,
    media_type,
    plotly_js_path,
    plotly_style_ids,
    static_file,
)
from classmood.vision.search import SHIPPED

# Join codes and session ids travel in URLs; anything else is refused before it reaches a template.
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SAFE_NEXT_RE = re.compile(r"^/(?!/)[A-Za-z0-9_\-/?=&.%]*$")


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=jinja2.select_autoescape(["html"]),  # user text must never become markup
        undefined=jinja2.StrictUndefined,
    )
    env.globals.update(asset=asset_url, plotly_url=PLOTLY_URL, plotly_style_ids=plotly_style_ids(), labels=LABELS)
    return env


def asset_url(relative: str) -> str:
    """URL of a static file with a version query (its mtime), so browsers never run a stale script.

    >>> asset_url("css/app.css").startswith("/static/css/app.css?v=")
    True
    """
    path = static_file(relative)
    if path is None:
        raise FileNotFoundError(f"static file {relative!r} missing")
    return f"/static/{relative}?v={int(path.stat().st_mtime)}"


def page_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """The JSON object every page script reads from ``<script id="cm-config">``: the emotions, their colours,
    the stream's close codes and the dashboard's settings."""
    cfg: dict[str, Any] = {
        "labels": list(LABELS),
        "colors": EMOTION_COLORS,
        "negative": sorted(NEGATIVE, key=LABELS.index),
        "close_codes": close_codes(),
        "live_window_s": settings.live_window_s,
        "smooth_window_s": settings.smooth_window_s,
        "private_cell_s": settings.private_cell_s,
        "private_seal_s": settings.private_seal_s,
        "alert_negative_share": settings.alert_negative_share,
        "alert_after_s": settings.alert_after_s,
        "chart_min_observations": CHART_MIN_OBSERVATIONS,
        "chart_min_students": CHART_MIN_STUDENTS,
    }
    cfg.update(extra)
    return cfg


def render(template: str, *, status_code: int = 200, charts: bool = False, **context: Any) -> HTMLResponse:
    """Render a template to an HTML response (no caching: shells are tiny and must follow the scripts)."""
    html = _environment().get_template(template).render(charts=charts, **context)
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}
    return HTMLResponse(html, status_code=status_code, headers=headers)


def _checked(value: str, what: str) -> str:
    if not _TOKEN_RE.fullmatch(value):
        raise HTTPException(status_code=404, detail=f"no such {what}")
    return value


def build_router(settings: Settings) -> APIRouter:
    """The page routes of ClassMood (see the Pages section of docs/API.md)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/", response_class=HTMLResponse)
    def landing() -> HTMLResponse:
        """Landing page: join a class, or sign in as a teacher."""
        return render("index.html", cm_config=page_config(settings, page="index"))

    @router.get("/login", response_class=HTMLResponse)
    def login(next: str = "/teacher") -> HTMLResponse:
        """Sign-in form; ``next`` must be a local path (no open redirect)."""
        target = next if _SAFE_NEXT_RE.fullmatch(next) else "/teacher"
        return render("login.html", next_url=target, cm_config=page_config(settings, page="login"))

    @router.get("/join", response_model=None)
    def join_form(code: str | None = None) -> Response:
        """Ask for a join code, or forward a typed one to its student page."""
        if code is not None and code.strip():
            code = code.strip()
            if _TOKEN_RE.fullmatch(code):
                return RedirectResponse(f"/join/{code}", status_code=303)
            return render("join.html", status_code=400, code=code, cm_config=page_config(settings, page="join"),
                          error="A join code has only letters, digits, '-' and '_'. Please check it.")
        return render("join.html", code="", error=None, cm_config=page_config(settings, page="join"))

    @router.get("/join/{code}", response_class=HTMLResponse)
    def student(code: str) -> HTMLResponse:
        """The student page: explanation, consent, camera; faces are analysed on the device, which sends only the
        scores (frames go to the server only in a session set to server analysis, or as its allowed fallback)."""
        if not _TOKEN_RE.fullmatch(code):
            return render("join.html", status_code=404, code="", cm_config=page_config(settings, page="join"),
                          error="This is not a valid join code. Please check the link or type the code.")
        cfg = page_config(settings, page="student", code=code, camera_fps=SHIPPED.camera_fps)
        page = render("student.html", charts=True, code=code, cm_config=cfg)
        page.headers.update(CROSS_ORIGIN_ISOLATED)  # multi-threaded on-device analysis (ondevice.js)
        return page

    @router.get("/privacy", response_class=HTMLResponse)
    def privacy() -> HTMLResponse:
        """What ClassMood does with a student's camera and data, in plain language (linked from the consent text)."""
        return render("privacy.html", cm_config=page_config(settings, page="privacy"))

    @router.get("/teacher", response_class=HTMLResponse)
    def teacher() -> HTMLResponse:
        """Courses and sessions of the signed-in teacher."""
        return render("teacher.html", cm_config=page_config(settings, page="teacher"))

    @router.get("/teacher/courses/{course_id}", response_class=HTMLResponse)
    def course(course_id: str) -> HTMLResponse:
        """One course over time: a row per session, shares across sessions, same-title topics compared."""
        cfg = page_config(settings, page="course", course_id=_checked(course_id, "course"))
        return render("course.html", charts=True, cm_config=cfg)

    @router.get("/teacher/sessions/{session_id}", response_class=HTMLResponse)
    def live(session_id: str) -> HTMLResponse:
        """Live dashboard of one session."""
        cfg = page_config(settings, page="live", session_id=_checked(session_id, "session"))
        return render("live.html", charts=True, session_id=session_id, cm_config=cfg)

    @router.get("/teacher/sessions/{session_id}/report", response_class=HTMLResponse)
    def report(session_id: str) -> HTMLResponse:
        """Report of one session after class, with CSV and PNG downloads."""
        cfg = page_config(settings, page="report", session_id=_checked(session_id, "session"))
        return render("report.html", charts=True, session_id=session_id, cm_config=cfg)

    @router.get("/admin", response_class=HTMLResponse)
    def admin() -> HTMLResponse:
        """Platform view for administrators: courses, teachers, hours of the day."""
        return render("admin.html", charts=True, cm_config=page_config(settings, page="admin"))

    return router


def build_static_router() -> APIRouter:
    """``/static/...`` from this package, and plotly.js (:func:`plotly_js_path`)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/static/vendor/plotly.min.js")
    def plotly_js() -> FileResponse:
        """plotly.js of this installation: the pages work with no internet."""
        path = plotly_js_path()
        if path is None:
            raise HTTPException(status_code=404, detail="plotly.js is not installed: run `npm ci` in the checkout")
        return _file(path, max_age=86400)

    @router.get("/static/{relative:path}", response_model=None)
    def static(relative: str, request: Request) -> Response:
        """A CSS or JS file of the pages; 404 for anything outside ``static/``.

        A URL with ``?v=`` (``asset_url``) may be cached; one without is what ES modules import from each other
        (``./common.js``), so the browser revalidates it every time and gets a 304 while it is unchanged.
        """
        path = static_file(relative)
        if path is None:
            raise HTTPException(status_code=404, detail="no such static file")
        if "v" in request.query_params:
            return _file(path, max_age=3600)
        response = _file(path, max_age=None)
        if request.headers.get("if-none-match") == response.headers["etag"]:
            return Response(status_code=304, headers={"ETag": response.headers["etag"], "Cache-Control": "no-cache"})
        return response

    return router


def _file(path: Path, *, max_age: int | None) -> FileResponse:
    cache = "no-cache" if max_age is None else f"public, max-age={max_age}"
    headers = {"Cache-Control": cache, "X-Content-Type-Options": "nosniff"}
    # stat now, so the ETag header exists before the response is sent (the static route compares it)
    return FileResponse(path, media_type=media_type(path), headers=headers, stat_result=path.stat())
