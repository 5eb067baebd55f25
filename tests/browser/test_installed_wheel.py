"""ClassMood installed from its wheel runs an on-device class, with no checkout and no node_modules beside it.

The wheel is built from this checkout (the build backend that ``pyproject.toml`` names, called as a PEP 517
frontend such as ``pip wheel`` calls it, without pip's own start: hatchling and ``hatch_build.py``, which adds
onnxruntime-web's and plotly.js's files), installed without its dependencies into a fresh virtual environment that
sees the test environment's packages (a ``.pth`` line; not the editable ClassMood of the checkout), and ``classmood
serve`` runs from a temporary folder. A student's Chromium then analyses the fake camera's face on the device
and the server stores the scores.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import sysconfig
import tomllib
import venv
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from classmood.benchmarks.servers import free_port, tls, wait_until_up
from classmood.server.ondevice import ORT_FILES, ORT_ROUTE
from classmood.server.web.assets import PLOTLY_FILES, PLOTLY_URL

from ..conftest import cheap_hashing_env
from .conftest import LiveServer, new_teacher
from .flows import api_session, join

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Installed:
    """A virtual environment with ClassMood installed from the wheel."""

    wheel: Path
    prefix: Path

    @property
    def python(self) -> Path:
        return self.prefix / "bin" / "python"

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of its processes: nothing that points back to the checkout."""
        drop = {"PYTHONPATH", "CLASSMOOD_ORT_DIR", "VIRTUAL_ENV"}
        return {**{k: v for k, v in os.environ.items() if k not in drop and not k.startswith("CLASSMOOD_")},
                **extra}


def build_wheel(out: Path) -> Path:
    """The project's wheel, built from this checkout (no build isolation: hatchling is a test dependency).

    The backend's ``build_wheel`` hook runs in a child process in the checkout, as a PEP 517 frontend runs it.
    """
    backend = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["build-system"]["build-backend"]
    subprocess.run([sys.executable, "-c", f"import sys, {backend} as b; b.build_wheel(sys.argv[1])", str(out)],
                   cwd=ROOT, check=True)
    (wheel,) = out.glob("classmood-*.whl")
    return wheel


def install(wheel: Path, prefix: Path) -> Installed:
    """A fresh venv that finds the test environment's packages (one .pth line), with the wheel installed in it."""
    venv.EnvBuilder(with_pip=False).create(prefix)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(prefix), "platbase": str(prefix)}))
    # A path line only: the test environment's own .pth files (its editable ClassMood) are not read.
    (site / "test-environment.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(prefix / "bin" / "python"), "install", "-q",
                    "--no-deps", "--no-index", str(wheel)], check=True)
    return Installed(wheel, prefix)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """ClassMood's wheel, built and installed once for this module."""
    return install(build_wheel(tmp_path_factory.mktemp("dist")), tmp_path_factory.mktemp("venv") / "env")


def test_the_wheel_holds_the_package_data(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    expected = {
        "classmood/py.typed", "classmood/vision/assets/emotion_cnn.onnx",
        "classmood/vision/assets/emotion_cnn.int8.onnx", "classmood/vision/assets/MODEL_CARD.md",
        "classmood/server/web/templates/student.html",
        "classmood/server/web/static/js/student.js", "classmood/server/web/static/js/ondevice.js",
        "classmood/server/web/static/css/app.css", "classmood/server/migrations/env.py",
        "classmood/server/migrations/script.py.mako", "classmood/server/migrations/versions/0001_initial.py",
        *(f"classmood/server/vendor/ort/{name}" for name in ORT_FILES),
        *(f"classmood/server/vendor/plotly/{name}" for name in PLOTLY_FILES)}
    assert expected <= names, sorted(expected - names)
    for folder in ("templates", "static/js"):  # every page file of the checkout is in the wheel
        here = ROOT / "src/classmood/server/web" / folder
        assert {f"classmood/server/web/{folder}/{p.name}" for p in here.iterdir() if p.is_file()} <= names
    assert not [n for n in names if "node_modules" in n or n.startswith("tests/")]
    runtime, charts = ROOT / "node_modules/onnxruntime-web/dist", ROOT / "node_modules/plotly.js-basic-dist-min"
    with zipfile.ZipFile(installed.wheel) as wheel:
        for name in ORT_FILES:
            assert wheel.read(f"classmood/server/vendor/ort/{name}") == (runtime / name).read_bytes()
        for name in PLOTLY_FILES:
            assert wheel.read(f"classmood/server/vendor/plotly/{name}") == (charts / name).read_bytes()


@pytest.fixture()
def served(installed: Installed, tmp_path: Path) -> Iterator[LiveServer]:
    """``classmood serve`` of the installed wheel, started in an empty folder outside the checkout."""
    email, password = "admin@example.org", secrets.token_urlsafe(12)
    env = installed.env(CLASSMOOD_ADMIN_EMAIL=email, CLASSMOOD_ADMIN_PASSWORD=password,
                        **cheap_hashing_env())
    port = free_port()
    with open(tmp_path / "serve.log", "wb") as log:
        proc = subprocess.Popen([str(installed.prefix / "bin" / "classmood"), "serve", "--port", str(port),
                                 "--data-dir", str(tmp_path / "data"), "--dev"], cwd=tmp_path, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        # which files the installed Python imports, asked while the server starts (two processes at once)
        where = subprocess.run([str(installed.python), "-c", "import classmood.server.ondevice as o; "
                                "print(o.__file__); print(o.ort_dir())"], cwd=tmp_path, env=env, check=True,
                               capture_output=True, text=True).stdout.split()
        assert all(Path(p).is_relative_to(installed.prefix) for p in where), where  # not the checkout's copy
        wait_until_up(f"http://127.0.0.1:{port}", lambda: proc.poll() is None)
        yield LiveServer(f"http://127.0.0.1:{port}", email, password)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        print((tmp_path / "serve.log").read_text(errors="replace")[-4000:])


def test_an_installed_classmood_runs_an_on_device_class(served: LiveServer, browser: Any) -> None:
    config = httpx.get(served.url + "/api/ondevice/config", timeout=30, verify=tls()).raise_for_status().json()
    assert config["runtime"]["available"] is True
    for name, media in ORT_FILES.items():
        response = httpx.get(served.url + ORT_ROUTE + name, timeout=30, verify=tls())
        assert response.status_code == 200 and response.headers["content-type"] == media, name
    charts = httpx.get(served.url + PLOTLY_URL, timeout=30, verify=tls())  # for the own histogram of the student page
    assert charts.status_code == 200 and charts.headers["content-type"].startswith("text/javascript")
    teacher = new_teacher(served, "Ms Wheel", "t")
    # a picture every 0.2 s (the page's shortest pace): the three scores do not take three seconds
    session = api_session(served, teacher, title="Installed", analysis_mode="device", frame_interval_s=0.2)
    context = browser.new_context(base_url=served.url)
    context.set_default_timeout(60_000)
    try:
        page = context.new_page()
        join(page, f"/join/{session['code']}", "Wheel")
        page.wait_for_function("() => Number(document.getElementById('acked').textContent) >= 3", timeout=90_000)
    finally:
        context.close()
    with served.client(teacher.email, teacher.password) as api:
        stored = api.get(f"/api/sessions/{session['id']}/histogram").raise_for_status().json()
    assert stored["total"] >= 3  # scored on the device, stored by the installed server
