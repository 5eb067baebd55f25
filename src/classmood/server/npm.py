"""Where the npm packages that ClassMood serves to browsers are found (package.json pins them; nothing from a CDN).

A built wheel carries their files in ``classmood/server/vendor/<name>/`` (``hatch_build.py`` puts them there); a
checkout serves its own ``node_modules``, which ``npm ci`` fills from package-lock.json.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

VENDOR_DIR = Path(__file__).with_name("vendor")  # in a built wheel
_REPOSITORY = Path(__file__).resolve().parents[3]  # src/classmood/server/npm.py -> the checkout


def npm_folder(name: str, package: str, subfolder: str, files: Iterable[str],
               override: str | None = None) -> Path | None:
    """The first folder holding all ``files`` of an npm package: ``override``, the wheel's ``vendor/<name>``, then
    ``node_modules/<package>/<subfolder>`` of the checkout and of the working directory; None if none does."""
    wanted = tuple(files)
    candidates = [Path(override)] if override else []
    candidates += [VENDOR_DIR / name] + [root / "node_modules" / package / subfolder
                                         for root in (_REPOSITORY, Path.cwd())]
    for folder in candidates:
        if all((folder / file).is_file() for file in wanted):
            return folder
    return None
