"""Browser benchmark: time per 640x480 frame of the on-device pipeline (ondevice.js) in headless Chromium.

``classmood bench browser`` starts a local ClassMood server, opens its student page in Debian's Chromium
(Playwright), loads the pipeline the page runs (CenterFace + crop + the emotion model on onnxruntime-web) once
per search setting (``shipped``: region search, scouts, change gate and skip rule of classmood.vision.search;
``baseline``: the old pipeline, a full detection and a classification at every frame), and times detect +
classify on scikit-image's astronaut in a 640x480 frame: a still stream and a moving one, frames one class
interval apart on the pipelines' clock, the settings taking turns frame by frame. Once single-threaded and once
with several WebAssembly threads (the page is cross-origin isolated), each in a fresh page: the runtime fixes
its threads when it starts. Each frame is labelled by what it needed (full detection, scout, regions only, no
detection), so the mean is the cost per frame at the class's pace and the kinds say where it goes.
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

# Runs in the student page: one pipeline per search setting, all with `threads`; after a warm-up, two streams
# of `frames` analyses, one simulated frame interval apart: the same picture ("still": the change gate and
# the skip rule apply) and a picture shifted and brightened at every frame ("moving": every frame needs a
# detection and every crop a classification). The settings take turns frame by frame, so a machine whose speed
# drifts slows them alike.
_BENCH_JS = """
async ([b64, width, height, threads, frames, searches, interval]) => {
  const module = document.getElementById('student').dataset.ondevice;
  const od = await import(module);
  const cfg = await (await fetch('/api/ondevice/config')).json();
  const pipes = [];
  for (const search of searches) pipes.push(await od.createPipeline(cfg, { threads, search }));
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
  let faces = 0;
  for (const pipe of pipes) for (let i = 0; i < 3; i += 1) faces = (await pipe.analyse(still, width, height, i)).length;
  const result = { threads: pipes[0].threads, faces, isolated: crossOriginIsolated,
    cores: navigator.hardwareConcurrency };
  for (const [name, pick] of [["still", () => still], ["moving", (i) => movingFrames[i % movingFrames.length]]]) {
    const runs = pipes.map((pipe) => { pipe.reset(); return { pipe, times: [], kinds: [], s0: { ...pipe.stats } }; });
    for (let i = 0; i < frames; i += 1) {
      for (const run of runs) {
        const s = run.pipe.stats, before = { ...s }, t0 = performance.now();
        await run.pipe.analyse(pick(i), width, height, 100 + i * interval);
        run.times.push(performance.now() - t0);
        // what the frame needed: a full detection, a scout (and regions), regions only, or no detection
        run.kinds.push(s.full > before.full ? "full" : s.scouts > before.scouts ? "scout"
          : s.regions > before.regions ? "region" : "none");
      }
    }
    result[name] = runs.map((r) => ({ times: r.times, kinds: r.kinds,
      classified: r.pipe.stats.classified - r.s0.classified, skipped: r.pipe.stats.skipped - r.s0.skipped }));
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
    kinds: dict[str, int]  # frames by what they needed: full, scout (+ regions), region, none (no detection)
    kind_median_ms: dict[str, float]
    classified: int
    skipped: int
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
            for count in threads:  # a fresh page each: the runtime fixes its threads when it starts
                page = browser.new_page()
                page.goto(url + "/join/BENCH1")  # the student page (cross-origin isolated), no class needed
                out = page.evaluate(_BENCH_JS, [b64, rgba.shape[1], rgba.shape[0], count, frames, list(searches),
                                                interval_s])
                page.close()
                runs += [_run(search, stream, int(out["threads"]), int(out["faces"]), out[stream][k])
                         for stream in ("still", "moving") for k, search in enumerate(searches)]
                isolated, cores = bool(out["isolated"]), int(out["cores"])
        finally:
            browser.close()
    return BrowserBench(runs=runs, isolated=isolated, cores=cores, interval_s=interval_s)


def _run(search: str, stream: str, threads: int, faces: int, out: dict[str, Any]) -> BrowserRun:
    times = [float(t) for t in out["times"]]
    by_kind: dict[str, list[float]] = {}
    for t, kind in zip(times, out["kinds"], strict=True):
        by_kind.setdefault(str(kind), []).append(t)
    return BrowserRun(search=search, stream=stream, threads=threads, faces=faces, median_ms=pct(times, 50) or 0.0,
                      p95_ms=pct(times, 95) or 0.0, mean_ms=sum(times) / len(times),
                      kinds={k: len(v) for k, v in by_kind.items()},
                      kind_median_ms={k: pct(v, 50) or 0.0 for k, v in by_kind.items()},
                      classified=int(out["classified"]), skipped=int(out["skipped"]), times_ms=times)


def format_browser_bench(result: BrowserBench) -> str:
    """A short report: one line per setting, thread count and stream, and the ratios to the old pipeline."""
    lines = [f"headless Chromium, 640x480 frame, detect + classify on onnxruntime-web (wasm): "
             f"cross-origin isolated {result.isolated}, {result.cores} logical cores; frames {result.interval_s:g} s "
             "apart on the pipeline's clock (still: the same picture; moving: shifted and brightened at every frame)"]
    old = {(r.threads, r.stream): r for r in result.runs if r.search == "baseline"}
    for r in result.runs:
        base = old.get((r.threads, r.stream))
        ratio = f" = {r.mean_ms / base.mean_ms:.2f}x the baseline's" if base and r.search != "baseline" else ""
        kinds = ", ".join(f"{k} {r.kinds[k]}x {r.kind_median_ms[k]:.1f} ms" for k in ("full", "scout", "region", "none")
                          if k in r.kinds)
        lines.append(f"  {r.search:<8} {r.threads} thread(s) {r.stream:<6}: mean {r.mean_ms:.1f} ms per frame{ratio} "
                     f"(median {r.median_ms:.1f}, p95 {r.p95_ms:.1f}); frames by need, median each: {kinds}; "
                     f"{r.classified} crops classified, {r.skipped} kept; {r.faces} face(s)")
    return "\n".join(lines)
