"""Hatch build hook: the wheel carries onnxruntime-web's CPU build, so an installed ClassMood runs the student page.

The on-device analysis of the student page needs three files of the npm package ``onnxruntime-web`` (about
14 MB, pinned by ``package-lock.json``). They are not committed: at wheel build time this hook takes them from
``node_modules`` (running ``npm ci`` first when the package is not installed there) and adds them to the wheel
as ``classmood/server/vendor/ort/``, where ``classmood.server.ondevice.ort_dir`` looks first. The hatchling
plugin interface is the one hatch-jupyter-builder uses for the same job in Jupyter extensions; a hook of our
own needs no extra build dependency and no network when ``node_modules`` is there.

Which files, and which version, are read from ``src/classmood/server/ondevice.py`` (``ORT_FILES``,
``ORT_VERSION``) without importing it (the build environment has none of ClassMood's dependencies), so they
are defined once. Editable installs (``make run``, ``make test``) skip the hook: they serve ``node_modules``
of the checkout.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

WHEEL_DIR = "classmood/server/vendor/ort"
ONDEVICE = Path("src/classmood/server/ondevice.py")
NPM_CI = ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"]


def module_constants(path: Path, *names: str) -> dict[str, Any]:
    """The literal values of module-level assignments in a Python file, without running it."""
    found: dict[str, Any] = {}
    assignments = [node for node in ast.parse(path.read_text(encoding="utf-8")).body if isinstance(node, ast.Assign)]
    for node in assignments:
        target = node.targets[0]
        if len(node.targets) == 1 and isinstance(target, ast.Name) and target.id in names:
            found[target.id] = ast.literal_eval(node.value)
    missing = set(names) - set(found)
    if missing:
        raise RuntimeError(f"{path}: no literal {', '.join(sorted(missing))}")
    return found


def installed_version(package_dir: Path) -> str | None:
    """The version of an npm package installed in ``package_dir`` (None when it is not installed)."""
    manifest = package_dir / "package.json"
    return str(json.loads(manifest.read_text(encoding="utf-8"))["version"]) if manifest.is_file() else None


def ort_sources(root: Path) -> dict[str, Path]:
    """The onnxruntime-web files the wheel must carry: wheel path -> file in ``node_modules``."""
    wanted = module_constants(root / ONDEVICE, "ORT_FILES", "ORT_VERSION")
    package = root / "node_modules" / "onnxruntime-web"
    if installed_version(package) is None and shutil.which("npm") and (root / "package-lock.json").is_file():
        subprocess.run(NPM_CI, cwd=root, check=True)  # a fresh clone: install what the lockfile pins
    version = installed_version(package)
    if version != wanted["ORT_VERSION"]:
        raise RuntimeError(f"the wheel needs onnxruntime-web {wanted['ORT_VERSION']} in {package} (found "
                           f"{version or 'none'}): run `npm ci` (package-lock.json) before building")
    sources = {f"{WHEEL_DIR}/{name}": package / "dist" / name for name in wanted["ORT_FILES"]}
    absent = [str(path) for path in sources.values() if not path.is_file()]
    if absent:
        raise RuntimeError(f"onnxruntime-web lacks {', '.join(absent)}: run `npm ci` before building")
    return sources


class OrtWebHook(BuildHookInterface):  # type: ignore[type-arg]  # generic over its builder config
    """Adds onnxruntime-web's files to the wheel (not to editable installs, nor to the sdist)."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        """Force-include the files into a standard wheel."""
        if self.target_name != "wheel" or version == "editable":
            return
        for wheel_path, source in ort_sources(Path(self.root)).items():
            build_data["force_include"][str(source.resolve())] = wheel_path
