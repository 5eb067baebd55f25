"""Static files of the web pages, and plotly.js: the npm package ``plotly.js-basic-dist-min`` of package.json,
from the wheel's own copy or the checkout's ``node_modules`` (no CDN)."""

from __future__ import annotations

import mimetypes
import re
from functools import cache
from pathlib import Path

from classmood.server.npm import npm_folder

STATIC_DIR = Path(__file__).with_name("static")
TEMPLATES_DIR = Path(__file__).with_name("templates")


# The basic bundle (bar, scatter and pie traces: all the charts draw) is a quarter of the full one's 4.8 MB, which
# every chart page, the student's included, would parse at load: about 1 s of CPU against 3 s on a slow laptop.
PLOTLY_PACKAGE = "plotly.js-basic-dist-min"
PLOTLY_FOLDER = ""  # the file lies at the package's top
PLOTLY_VERSION = "4.1.2"  # pinned in package.json, checked by hatch_build.py
PLOTLY_FILES = ("plotly-basic.min.js",)
PLOTLY_URL = f"/static/vendor/plotly.min.js?v={PLOTLY_VERSION}"


@cache
def plotly_js_path() -> Path | None:
    """plotly.js as this installation serves it: the wheel's copy (``classmood/server/vendor/plotly/``), else the
    checkout's ``node_modules``; None when neither has it (``npm ci`` installs it).

    >>> plotly_js_path() is None or plotly_js_path().name == "plotly-basic.min.js"
    True
    """
    folder = npm_folder("plotly", PLOTLY_PACKAGE, PLOTLY_FOLDER, PLOTLY_FILES)
    return None if folder is None else folder / PLOTLY_FILES[0]


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
    path = plotly_js_path()
    found = _INJECTED_STYLE.findall(path.read_bytes()) if path else []
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
