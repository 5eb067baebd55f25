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

from classmood.benchmarks.load import local_server, pct

CHROMIUM = Path("/usr/bin/chromium")

# Runs in the student page: build the pipeline with `threads` and `search`, warm it up, then time two streams
# of `frames` analyses, one simulated frame interval apart: the same picture ("still": the skip rule applies)
# and a picture that moves and changes brightness at every frame ("moving": every crop is classified again).
_BENCH_JS = """
async ([b64, width, height, threads, frames, search, interval]) => {
  const module = document.getElementById('student').dataset.ondevice;
  const od = await import(module);
  const cfg = await (await fetch('/api/ondevice/config')).json();
  const pipe = await od.createPipeline(cfg, { threads, search });
  const bin = atob(b64), still = new Uint8ClampedArray(bin.length);
  for (let i = 0; i < bin.length; i += 1) still[i] = bin.charCodeAt(i);
  const moved = (k) => {  // shifted right by 0-16 px, brightness 0.96-1.04
    const out = new Uint8ClampedArray(still.length), dx = (k % 5) * 4, gain = 1 + 0.04 * ((k % 3) - 1);
    for (let y = 0; y < height; y += 1) for (let x = 0; x < width; x += 1) {
      const s = (y * width + Math.max(0, x - dx)) * 4, t = (y * width + x) * 4;
      out[t] = still[s] * gain; out[t + 1] = still[s + 1] * gain; out[t + 2] = still[s + 2] * gain; out[t + 3] = 255;
    }
    return out;
  };
  const movingFrames = Array.from({ length: 15 }, (_, k) => moved(k));
  let clock = 0, faces = 0;
  for (let i = 0; i < 3; i += 1) faces = (await pipe.analyse(still, width, height, clock += interval)).length;
  const result = { threads: pipe.threads, faces, isolated: crossOriginIsolated, cores: navigator.hardwareConcurrency };
  for (const [name, pick] of [["still", () => still], ["moving", (i) => movingFrames[i % movingFrames.length]]]) {
    pipe.reset();
    const times = [], full = [];
    for (let i = 0; i < frames; i += 1) {
      const rgba = pick(i), before = pipe.stats.full, t0 = performance.now();
      await pipe.analyse(rgba, width, height, clock += interval);
      times.push(performance.now() - t0);
      full.push(pipe.stats.full > before);
    }
    result[name] = { times, full, classified: pipe.stats.classified, skipped: pipe.stats.skipped };
  }
  return result;
}
"""


@dataclass
class BrowserRun:
    """One pipeline setting, thread count and stream: milliseconds per frame."""

    search: str
    stream: str
    threads: int
    faces: int
    median_ms: float
    p95_ms: float
    mean_ms: float
    full_share: float  # frames that had a full-frame detection
    region_median_ms: float | None  # frames searched in regions only
    full_median_ms: float | None
    times_ms: list[float] = field(default_factory=list, repr=False)


@dataclass
class BrowserBench:
    """The runs, and what the browser said about itself."""

    runs: list[BrowserRun]
    isolated: bool
    cores: int
    interval_s: float

    def summary(self) -> dict[str, Any]:
        return {"isolated": self.isolated, "cores": self.cores, "interval_s": self.interval_s,
                "runs": [{k: v for k, v in asdict(r).items() if k != "times_ms"} for r in self.runs]}


def bench_frame(width: int = 640, height: int = 480) -> np.ndarray:
    """The astronaut's portrait centred on a grey 640x480 canvas, as RGBA."""
    from skimage import data

    canvas = np.full((height, width, 3), 128, np.uint8)
    side = min(width, height)
    left = (width - side) // 2
    canvas[:, left : left + side] = cv2.resize(data.astronaut(), (side, side), interpolation=cv2.INTER_AREA)
    return np.dstack([canvas, np.full((height, width), 255, np.uint8)])


def run_browser_bench(frames: int = 30, threads: tuple[int, ...] = (1, 0),
                      searches: tuple[str, ...] = ("shipped", "baseline"), interval_s: float = 1.0) -> BrowserBench:
    """Time the pipeline per frame for each search setting and thread count (0: as many as the page would use).

    Frames are ``interval_s`` apart on the pipeline's clock (the class's default frame interval), so full-frame
    detections come as often as they do in class; they are timed back to back.
    """
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
                for search in searches:  # each setting in a fresh page: the runtime fixes its threads at start
                    page = browser.new_page()
                    page.goto(url + "/join/BENCH1")  # the student page (cross-origin isolated), no class needed
                    out = page.evaluate(_BENCH_JS, [b64, rgba.shape[1], rgba.shape[0], count, frames, search,
                                                    interval_s])
                    page.close()
                    runs += [_run(search, stream, int(out["threads"]), int(out["faces"]), out[stream])
                             for stream in ("still", "moving")]
                    isolated, cores = bool(out["isolated"]), int(out["cores"])
        finally:
            browser.close()
    return BrowserBench(runs=runs, isolated=isolated, cores=cores, interval_s=interval_s)


def _run(search: str, stream: str, threads: int, faces: int, out: dict[str, Any]) -> BrowserRun:
    times = [float(t) for t in out["times"]]
    full = [bool(f) for f in out["full"]]
    regions = [t for t, f in zip(times, full, strict=True) if not f]
    fulls = [t for t, f in zip(times, full, strict=True) if f]
    return BrowserRun(search=search, stream=stream, threads=threads, faces=faces, median_ms=pct(times, 50) or 0.0,
                      p95_ms=pct(times, 95) or 0.0, mean_ms=sum(times) / len(times), full_share=len(fulls) / len(times),
                      region_median_ms=pct(regions, 50), full_median_ms=pct(fulls, 50), times_ms=times)


def format_browser_bench(result: BrowserBench) -> str:
    """A short report: one line per setting, thread count and stream, and the ratios to the old pipeline."""
    lines = [f"headless Chromium, 640x480 frame, detect + classify on onnxruntime-web (wasm): "
             f"cross-origin isolated {result.isolated}, {result.cores} logical cores; frames {result.interval_s:g} s "
             "apart on the pipeline's clock (still: the same picture; moving: shifted and brightened at every frame)"]
    old = {(r.threads, r.stream): r for r in result.runs if r.search == "baseline"}
    for r in result.runs:
        region = f"{r.region_median_ms:.1f}" if r.region_median_ms is not None else "-"
        full = f"{r.full_median_ms:.1f}" if r.full_median_ms is not None else "-"
        base = old.get((r.threads, r.stream))
        ratio = f", mean {r.mean_ms / base.mean_ms:.2f}x the baseline's" if base and r.search != "baseline" else ""
        lines.append(f"  {r.search:<8} {r.threads} thread(s) {r.stream:<6}: median {r.median_ms:.1f} ms, "
                     f"p95 {r.p95_ms:.1f}, mean {r.mean_ms:.1f} ms per frame{ratio}; region-only frames "
                     f"{region} ms, full-frame {full} ms ({100 * r.full_share:.0f} % of frames), {r.faces} face(s)")
    return "\n".join(lines)
