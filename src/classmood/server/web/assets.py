"""Static files of the web pages, and plotly.js taken from the installed ``plotly`` wheel (no CDN)."""

from __future__ import annotations

import mimetypes
import re
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


# plotly.js fills a <style> element with fixed CSS at load time unless an element of its id exists already.
_INJECTED_STYLE = re.compile(
    rb'getElementById\("([A-Za-z0-9_-]{1,128})"\)\)\{var \w+=document\.createElement\("style"\)')


@cache
def plotly_style_ids() -> tuple[str, ...]:
    """Ids of the ``<style>`` elements plotly.js would fill with fixed CSS when it loads (maplibre's, for map
    traces, which ClassMood does not draw).

    The chart pages put an empty ``<style>`` of each id in their head, so plotly.js skips the injection:
    the CSP's ``style-src`` has no ``'unsafe-inline'`` and would refuse it (a reported violation). Read from
    the installed bundle, so a plotly upgrade that changes the ids needs nothing here.

    >>> all(isinstance(i, str) for i in plotly_style_ids())
    True
    """
    found = _INJECTED_STYLE.findall(plotly_js_path().read_bytes())
    return tuple(dict.fromkeys(i.decode() for i in found))


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
