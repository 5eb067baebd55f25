"""Hatch build hook: the wheel carries the npm files the browser pages need, so an installed ClassMood serves them.

The student page runs three files of the npm package ``onnxruntime-web`` (about 14 MB), and every chart page loads
``plotly.js-basic-dist-min`` (1.2 MB); package-lock.json pins both. They are not committed: at wheel build time this
hook takes them from ``node_modules`` (running ``npm ci`` first when a package is not installed there) and adds
them to the wheel as ``classmood/server/vendor/<name>/``, where ``classmood.server.npm.npm_folder`` looks first.
The hatchling plugin interface is the one hatch-jupyter-builder uses for the same job in Jupyter extensions; a hook
of our own needs no extra build dependency and no network when ``node_modules`` is there.

Which files, and which versions, are read from the modules that serve them (``ORT_FILES``/``ORT_VERSION`` in
``ondevice.py``, ``PLOTLY_FILES``/``PLOTLY_VERSION`` in ``web/assets.py``) without importing them (the build
environment has none of ClassMood's dependencies), so they are defined once. Editable installs (``make run``,
``make test``) skip the hook: they serve ``node_modules`` of the checkout.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

# wheel folder -> the module that pins the package, and the prefix of its constants (_PACKAGE, _FOLDER: where the
# files lie inside the package, _FILES, _VERSION)
VENDORED = {
    "ort": (Path("src/classmood/server/ondevice.py"), "ORT"),
    "plotly": (Path("src/classmood/server/web/assets.py"), "PLOTLY"),
}
WHEEL_ROOT = "classmood/server/vendor"
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


def npm_sources(root: Path, name: str) -> dict[str, Path]:
    """The files of one vendored npm package that the wheel must carry: wheel path -> file in ``node_modules``."""
    module, prefix = VENDORED[name]
    keys = ("PACKAGE", "FOLDER", "FILES", "VERSION")
    pins = module_constants(root / module, *(f"{prefix}_{key}" for key in keys))
    package_name, subfolder, files, wanted = (pins[f"{prefix}_{key}"] for key in keys)
    package = root / "node_modules" / package_name
    if installed_version(package) is None and shutil.which("npm") and (root / "package-lock.json").is_file():
        subprocess.run(NPM_CI, cwd=root, check=True)  # a fresh clone: install what the lockfile pins
    version = installed_version(package)
    if version != wanted:
        raise RuntimeError(f"the wheel needs {package_name} {wanted} in {package} (found "
                           f"{version or 'none'}): run `npm ci` (package-lock.json) before building")
    sources = {f"{WHEEL_ROOT}/{name}/{file}": package / subfolder / file for file in files}
    absent = [str(path) for path in sources.values() if not path.is_file()]
    if absent:
        raise RuntimeError(f"{package_name} lacks {', '.join(absent)}: run `npm ci` before building")
    return sources


class NpmFilesHook(BuildHookInterface):  # type: ignore[type-arg]  # generic over its builder config
    """Adds the vendored npm files to the wheel (not to editable installs, nor to the sdist)."""

    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        """Force-include the files into a standard wheel."""
        if self.target_name != "wheel" or version == "editable":
            return
        for name in VENDORED:
            for wheel_path, source in npm_sources(Path(self.root), name).items():
                build_data["force_include"][str(source.resolve())] = wheel_path
