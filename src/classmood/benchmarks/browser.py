"""Browser benchmark: time per 640x480 frame of the on-device pipeline (ondevice.js) in headless Chromium.

``classmood bench browser`` starts a local ClassMood server, opens its student page in Debian's Chromium
(Playwright), loads the same pipeline the page runs (CenterFace + crop + the emotion model on
onnxruntime-web), and times detect + classify on scikit-image's astronaut centred in a 640x480 frame, once
single-threaded and once with several WebAssembly threads (the page is cross-origin isolated, so
onnxruntime-web may use them). Each thread count runs in a fresh page: the runtime fixes it when it starts.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from classmood.benchmarks.load import pct
from classmood.benchmarks.servers import local_server

CHROMIUM = Path("/usr/bin/chromium")

# Runs in the student page: build the pipeline with `threads`, warm it up, time `frames` analyses.
_BENCH_JS = """
async ([b64, width, height, threads, frames]) => {
  const module = document.getElementById('student').dataset.ondevice;
  const od = await import(module);
  const cfg = await (await fetch('/api/ondevice/config')).json();
  const pipe = await od.createPipeline(cfg, { threads });
  const bin = atob(b64), rgba = new Uint8ClampedArray(bin.length);
  for (let i = 0; i < bin.length; i += 1) rgba[i] = bin.charCodeAt(i);
  let faces = 0;
  for (let i = 0; i < 3; i += 1) faces = (await pipe.analyse(rgba, width, height)).length;
  const times = [];
  for (let i = 0; i < frames; i += 1) {
    const t0 = performance.now();
    await pipe.analyse(rgba, width, height);
    times.push(performance.now() - t0);
  }
  return { times, faces, threads: pipe.threads, isolated: crossOriginIsolated, cores: navigator.hardwareConcurrency };
}
"""


@dataclass
class BrowserRun:
    """One thread count: milliseconds per frame."""

    threads: int
    faces: int
    median_ms: float
    p95_ms: float
    frames_per_s: float
    times_ms: list[float] = field(default_factory=list, repr=False)


@dataclass
class BrowserBench:
    """The runs, and what the browser said about itself."""

    runs: list[BrowserRun]
    isolated: bool
    cores: int

    def summary(self) -> dict[str, Any]:
        return {"isolated": self.isolated, "cores": self.cores,
                "runs": [{k: v for k, v in asdict(r).items() if k != "times_ms"} for r in self.runs]}


def bench_frame(width: int = 640, height: int = 480) -> np.ndarray:
    """The astronaut's portrait centred on a grey 640x480 canvas, as RGBA."""
    from skimage import data

    canvas = np.full((height, width, 3), 128, np.uint8)
    side = min(width, height)
    left = (width - side) // 2
    canvas[:, left : left + side] = cv2.resize(data.astronaut(), (side, side), interpolation=cv2.INTER_AREA)
    return np.dstack([canvas, np.full((height, width), 255, np.uint8)])


def run_browser_bench(frames: int = 30, threads: tuple[int, ...] = (1, 0)) -> BrowserBench:
    """Time the pipeline per frame for each thread count (0: as many as the page would use, up to 4)."""
    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install chromium (scripts/ensure-services.sh)")
    from playwright.sync_api import sync_playwright

    rgba = bench_frame()
    b64 = base64.b64encode(rgba.tobytes()).decode("ascii")
    runs: list[BrowserRun] = []
    isolated, cores = False, 0
    with local_server("bench-admin@example.org", secrets.token_urlsafe(12)) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            for count in threads:
                page = browser.new_page()
                page.goto(url + "/join/BENCH1")  # the student page (cross-origin isolated), no class needed
                wanted = count or 0
                out = page.evaluate(_BENCH_JS, [b64, rgba.shape[1], rgba.shape[0], wanted, frames])
                page.close()
                times = [float(t) for t in out["times"]]
                median = pct(times, 50) or 0.0
                runs.append(BrowserRun(threads=int(out["threads"]), faces=int(out["faces"]), median_ms=median,
                                       p95_ms=pct(times, 95) or 0.0, frames_per_s=1000.0 / median if median else 0.0,
                                       times_ms=times))
                isolated, cores = bool(out["isolated"]), int(out["cores"])
        finally:
            browser.close()
    return BrowserBench(runs=runs, isolated=isolated, cores=cores)


def format_browser_bench(result: BrowserBench) -> str:
    """A short report: one line per thread count."""
    lines = [f"headless Chromium, 640x480 frame, detect + classify on onnxruntime-web (wasm): "
             f"cross-origin isolated {result.isolated}, {result.cores} logical cores"]
    for r in result.runs:
        lines.append(f"  {r.threads} thread(s): median {r.median_ms:.1f} ms, p95 {r.p95_ms:.1f} ms per frame "
                     f"({r.frames_per_s:.1f} frames/s), {r.faces} face(s)")
    return "\n".join(lines)
