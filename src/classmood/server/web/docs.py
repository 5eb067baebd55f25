"""``/docs``: Swagger UI served by ClassMood itself from the ``swagger-ui-bundle-v2`` wheel (no CDN).

FastAPI's own ``/docs`` loads Swagger UI from a CDN and starts it with an inline script; neither
passes the pages' Content-Security-Policy. Here the HTML, the bundle and the start script all come
from this server.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse

from classmood.server.web.assets import media_type

SWAGGER_FILES = frozenset({"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"})


def swagger_dir() -> Path | None:
    """The folder of the installed Swagger UI files, or ``None`` when the wheel is absent."""
    try:
        import swagger_ui_bundle
    except ImportError:
        return None
    return Path(swagger_ui_bundle.swagger_ui_path)


def build_docs_router(render: Callable[..., HTMLResponse]) -> APIRouter | None:
    """``/docs`` and ``/static/vendor/swagger-ui/<file>``; ``None`` without Swagger UI (``/openapi.json`` stays)."""
    folder = swagger_dir()
    if folder is None or not (folder / "swagger-ui-bundle.js").is_file():
        return None
    router = APIRouter(include_in_schema=False)

    @router.get("/docs", response_class=HTMLResponse)
    def docs() -> HTMLResponse:
        """The interactive API documentation of ``/openapi.json``."""
        return render("docs.html", cm_config={"page": "docs"})

    @router.get("/static/vendor/swagger-ui/{name}")
    def swagger_file(name: str) -> FileResponse:
        """One file of Swagger UI (only the few the page uses)."""
        if name not in SWAGGER_FILES:
            raise HTTPException(status_code=404, detail="no such file")
        path = folder / name
        headers = {"Cache-Control": "public, max-age=86400"}
        return FileResponse(path, media_type=media_type(path), headers=headers)

    return router
