"""Static files of the web pages, and plotly.js taken from the installed ``plotly`` wheel (no CDN)."""

from __future__ import annotations

import mimetypes
from functools import cache
from importlib import resources
from pathlib import Path

STATIC_DIR = Path(__file__).with_name("static")
TEMPLATES_DIR = Path(__file__).with_name("templates")


@cache
def plotly_js_path() -> Path:
    """Path of ``plotly.min.js`` inside the installed ``plotly`` package.

    >>> plotly_js_path().name
    'plotly.min.js'
    """
    path = Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: plotly.min.js missing from the plotly package")
    return path


def static_file(relative: str) -> Path | None:
    """Resolve a path under ``static/`` safely; ``None`` if it escapes the folder or does not exist.

    >>> static_file("../router.py") is None
    True
    """
    root = STATIC_DIR.resolve()
    target = (root / relative).resolve()
    if root not in target.parents or not target.is_file():
        return None
    return target


def media_type(path: Path) -> str:
    """Content type of a static file (JavaScript and CSS with a UTF-8 charset)."""
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"{kind}; charset=utf-8" if kind in ("text/javascript", "application/javascript", "text/css") else kind
