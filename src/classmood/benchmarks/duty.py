"""`classmood bench browser --duty`: what the student page costs the student's computer during a class.

A local ClassMood server runs a live session in on-device mode; a student joins it in headless Chromium whose
fake camera (``--use-file-for-fake-video-capture``) plays a clip of real faces (scikit-image's astronaut and
cameraman, moving and turning a little, made at run time as a 30 fps Y4M, a webcam's usual rate). The page
analyses at the session's default frame interval for ``seconds``. The figure is the CPU time (user + system,
from ``/proc``) of the page's Chromium processes (renderer, GPU, utility: camera capture and network) per second
of class, as a percentage of one core; the browser's own main process is reported apart. The shipped pipeline
and the old one (``baseline``: a full detection and a classification of every face at every frame, the camera
at its own rate) run side by side, each in its own Chromium, at the same time, so both see the same machine.
Linux only (``/proc``).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import numpy.typing as npt

from classmood.benchmarks.browser import CHROMIUM
from classmood.benchmarks.cpu import process_cpu_s
from classmood.benchmarks.servers import local_server, tls

CLIP_FPS = 30  # a webcam's usual rate: the page's camera_fps is a request, and the preview's frames cost
CLIP_SECONDS = 6
PAGE_TYPES = ("renderer", "gpu-process", "utility")


def clip_frames(*, width: int = 640, height: int = 480, motion: float = 1.0) -> list[npt.NDArray[np.uint8]]:
    """RGB frames of two real faces, one after the other, each drifting and turning slowly (6 s at CLIP_FPS).

    ``motion`` scales the drift (±20 px) and the turn (±6°); 0: each face sits still (its clip still has the
    camera's own noise: the Y4M round trip of every frame).
    """
    from skimage import data

    heads = [data.astronaut()[10:300, 100:360], cv2.cvtColor(data.camera()[40:300, 120:354], cv2.COLOR_GRAY2RGB)]
    count = CLIP_FPS * CLIP_SECONDS
    frames = []
    for i in range(count):
        phase = 2 * np.pi * i / count
        frames.append(_place(heads[i * len(heads) // count], width, height, dx=20 * motion * np.sin(phase),
                             angle=6 * motion * np.sin(2 * phase)))
    return frames


def face_clip(path: Path, motion: float = 1.0) -> Path:
    """:func:`clip_frames` as a Y4M (C420) clip for Chromium's fake camera."""
    frames = clip_frames(motion=motion)
    height, width = frames[0].shape[:2]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F{CLIP_FPS}:1 Ip A1:1 C420jpeg XYSCSS=420JPEG\n".encode("ascii"))
        for frame in frames:
            f.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


def _place(head: npt.NDArray[np.uint8], width: int, height: int, *, dx: float, angle: float) -> npt.NDArray[np.uint8]:
    side = int(height * 0.75)
    scaled = cv2.resize(head, (side * head.shape[1] // head.shape[0], side), interpolation=cv2.INTER_AREA)
    frame = np.full((height, width, 3), 120, np.uint8)
    left, top = (width - scaled.shape[1]) // 2, (height - side) // 2
    frame[top : top + side, left : left + scaled.shape[1]] = scaled
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    turn[0, 2] += dx
    return np.asarray(cv2.warpAffine(frame, turn, (width, height), borderMode=cv2.BORDER_REPLICATE), np.uint8)


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                with open(f"/proc/{entry}/stat") as f:
                    parent = int(f.read().rsplit(")", 1)[1].split()[1])
                tree.setdefault(parent, []).append(int(entry))
    return tree


def _chromium_processes(root: int) -> dict[int, tuple[str, int]]:
    """Chromium processes under ``root``: pid -> (kind, parent pid); kind from ``--type=`` ("browser": none)."""
    tree, out = _children(), {}
    todo = list(tree.get(root, []))
    while todo:
        pid = todo.pop()
        kids = tree.get(pid, [])
        todo += kids
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                # Chromium rewrites its children's titles as one space-separated string
                args = f.read().decode(errors="replace").replace("\0", " ").split()
            if args and "chrom" in Path(args[0]).name:
                kind = next((a.split("=", 1)[1] for a in args if a.startswith("--type=")), "browser")
                out[pid] = (kind, next((p for p, k in tree.items() if pid in k), 0))
    return out


def chromium_cpu(browser_pid: int) -> dict[str, float]:
    """CPU seconds so far of one Chromium (its main process and every process under it), by kind."""
    out = {"browser": process_cpu_s(browser_pid)}
    for pid, (kind, _) in _chromium_processes(browser_pid).items():
        out[kind] = out.get(kind, 0.0) + process_cpu_s(pid)
    return out


def _main_processes() -> set[int]:
    return {pid for pid, (kind, _) in _chromium_processes(os.getpid()).items() if kind == "browser"}


@dataclass
class DutyRun:
    """One pipeline setting: CPU per second of class, and what the page did."""

    search: str
    seconds: float
    frames: int
    faces_sent: int
    page_cpu_percent: float  # renderer + GPU + utility processes, % of one core
    browser_cpu_percent: float
    by_kind: dict[str, float]
    median_frame_ms: float
    pipeline: dict[str, int]  # what the pipeline did in the measured time: detections by kind, crops classified


def _session(url: str, email: str, password: str) -> str:
    """A live on-device session (at the default frame interval); returns its join code."""
    with httpx.Client(base_url=url, timeout=30, verify=tls()) as c:
        admin = {"Authorization": "Bearer " + c.post("/api/auth/token", json={"email": email, "password": password})
                 .raise_for_status().json()["access_token"]}
        course = c.post("/api/courses", headers=admin, json={"title": "Duty"}).raise_for_status().json()
        session = c.post(f"/api/courses/{course['id']}/sessions", headers=admin,
                         json={"title": "Duty run", "analysis_mode": "device"}).raise_for_status().json()
        c.post(f"/api/sessions/{session['id']}/start", headers=admin).raise_for_status()
        return str(session["code"])


@contextlib.contextmanager
def _student(pw: Any, url: str, code: str, clip: Path, search: str,
             hide_preview: bool = False) -> Iterator[tuple[Any, int]]:
    """A student's page running ``search``, and the pid of its Chromium's main process; ``hide_preview``: the
    student presses "Hide my picture"."""
    before = _main_processes()
    browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=[
        "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={clip}", "--no-sandbox", "--disable-dev-shm-usage"])
    try:
        (pid,) = _main_processes() - before
        page = browser.new_context(base_url=url).new_page()

        def settings(route: Any) -> None:  # the page runs the pipeline setting under test
            config = json.loads(route.fetch().text())
            config["default_search"] = search
            route.fulfill(json=config)

        page.route("**/api/ondevice/config", settings)
        page.goto(f"/join/{code}")
        page.get_by_label("Your name as the teacher will see it").fill(f"Duty {search}")
        page.get_by_label("I agree that my camera is used").check()
        page.get_by_role("button", name="Start camera").click()
        page.wait_for_function("() => window.cmStudent && window.cmStudent.frameMs.length >= 2", timeout=120_000)
        if hide_preview:
            page.get_by_role("button", name="Hide my picture").click()
            page.locator("#preview").wait_for(state="hidden")
        yield page, pid
    finally:
        browser.close()


def _stats(page: Any) -> dict[str, Any]:
    return dict(page.evaluate("() => ({ frames: window.cmStudent.frameMs.length, sent: window.cmStudent.sent, "
                              "ms: window.cmStudent.frameMs.slice(-60), "
                              "stats: { ...((window.cmStudent.pipeline || {}).stats || {}) } })"))


def run_duty_bench(seconds: float = 60.0, searches: tuple[str, ...] = ("shipped", "baseline"),
                   motion: float = 1.0, hide_preview: bool = False) -> list[DutyRun]:
    """Measure each setting's page for ``seconds`` of class, all at the same time (``motion``: see clip_frames;
    ``hide_preview``: the student hides their picture, on every page but the old pipeline's, which had no such
    switch)."""
    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install chromium (scripts/ensure-services.sh)")
    from playwright.sync_api import sync_playwright

    email, password = "duty-admin@example.org", secrets.token_urlsafe(12)
    with tempfile.TemporaryDirectory(prefix="cm-duty-") as tmp, local_server(email, password) as url, \
            sync_playwright() as pw, contextlib.ExitStack() as stack:
        clip = face_clip(Path(tmp) / "faces.y4m", motion)
        code = _session(url, email, password)
        pages = {s: stack.enter_context(_student(pw, url, code, clip, s, hide_preview and s != "baseline"))
                 for s in searches}
        cpu0 = {s: chromium_cpu(pid) for s, (_, pid) in pages.items()}
        stats0, t0 = {s: _stats(page) for s, (page, _) in pages.items()}, time.monotonic()
        while time.monotonic() - t0 < seconds:
            time.sleep(0.5)
        elapsed = time.monotonic() - t0
        cpu1 = {s: chromium_cpu(pid) for s, (_, pid) in pages.items()}
        stats1 = {s: _stats(page) for s, (page, _) in pages.items()}
    return [_duty(s, elapsed, cpu0[s], cpu1[s], stats0[s], stats1[s]) for s in searches]


def _duty(search: str, elapsed: float, cpu0: dict[str, float], cpu1: dict[str, float], s0: dict[str, Any],
          s1: dict[str, Any]) -> DutyRun:
    kinds = {k: 100 * (cpu1.get(k, 0.0) - cpu0.get(k, 0.0)) / elapsed for k in cpu1}
    ms = sorted(float(v) for v in s1["ms"])
    return DutyRun(search=search, seconds=elapsed, frames=int(s1["frames"]) - int(s0["frames"]),
                   faces_sent=int(s1["sent"]) - int(s0["sent"]),
                   page_cpu_percent=sum(v for k, v in kinds.items() if k in PAGE_TYPES),
                   browser_cpu_percent=kinds.get("browser", 0.0), by_kind=kinds,
                   median_frame_ms=ms[len(ms) // 2] if ms else 0.0,
                   pipeline={k: int(v) - int(s0["stats"].get(k, 0)) for k, v in s1["stats"].items()})


def format_duty_bench(runs: list[DutyRun]) -> str:
    """One line per setting, and the shipped one's ratio to the old pipeline."""
    lines = ["student page in headless Chromium, fake camera playing real faces (640x480), the session's default "
             "frame interval; CPU time of the page's processes (renderer + GPU + utility) per second of class"]
    base = next((r for r in runs if r.search == "baseline"), None)
    for r in runs:
        ratio = f", {r.page_cpu_percent / base.page_cpu_percent:.2f}x the baseline's" \
            if base and r is not base and base.page_cpu_percent else ""
        kinds = ", ".join(f"{k} {v:.2f}" for k, v in sorted(r.by_kind.items()))
        lines.append(f"  {r.search:<8}: {r.page_cpu_percent:.2f} % of one core{ratio} (browser process "
                     f"{r.browser_cpu_percent:.2f} %; {kinds}); {r.frames} frames analysed in {r.seconds:.0f} s, "
                     f"median {r.median_frame_ms:.1f} ms each, {r.faces_sent} scores sent; pipeline: "
                     + ", ".join(f"{k} {v}" for k, v in r.pipeline.items()))
    return "\n".join(lines)


def duty_summary(runs: list[DutyRun]) -> list[dict[str, Any]]:
    """The runs as JSON-ready data."""
    return [asdict(r) for r in runs]
