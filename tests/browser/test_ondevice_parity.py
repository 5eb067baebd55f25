"""The in-browser pipeline (ondevice.js on onnxruntime-web) finds and scores the same faces as Python's.

Chromium's fake camera plays real face frames (one face, four faces, dark, tilted, mirrored). The test takes
pictures from the student page's camera, analyses each with the page's own pipeline (from a fresh state: a
full-frame detection) and the same pixels with ``EmotionAnalyzer`` (same model file, see
classmood.server.ondevice), and compares faces, boxes and probabilities. A second test plays one stream of
frames, with their times, through both pipelines at the shipped search settings (region search, full
detections, the skip rule) and compares every frame and what each pipeline chose to do.

Both tests use one student page (joined once, its model and runtime loaded once) and one Python analyser.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from classmood.benchmarks.servers import tls

from .conftest import ARTIFACTS, LiveServer, new_teacher
from .flows import api_session, join
from .ondevice import SAMPLES_JS, chromium, face_frames, write_clip

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

BOX_PX = 3.0  # boxes within a few pixels
PROB_ABS = 0.03  # probabilities within 0.03 (max absolute difference)
TOP_AGREEMENT = 0.98
# A face whose two likeliest emotions are this close is a tie at the pipeline's precision (the browser's resize
# and float arithmetic move probabilities by a few thousandths): its top label is not a parity question, so it is
# left out of the label agreement (counted and printed) while its probabilities are still held to PROB_ABS.
TIE_MARGIN = 0.01
HOLD = 6  # video frames (at 10 a second) each picture of the clip is shown: a cycle of the six in 3.6 s
SAMPLE_MS = 12_000  # the camera pictures are taken until every picture of the clip was seen, or three cycles

# Runs in the student page: one stream of frames at the given times through a new pipeline on the page's runtime
# (loaded once for the module). The different pictures come once, as base64 RGB, and ``order`` plays them; the
# page's own ticks skip meanwhile (its ``busy`` flag), as on a busy device.
STREAM_JS = """
async ([pictures, order, width, height, times]) => {
  const st = window.cmStudent;
  while (st.busy) await new Promise((r) => setTimeout(r, 10));
  st.busy = true;
  try {
    const od = await import(document.getElementById('student').dataset.ondevice);
    const cfg = await (await fetch('/api/ondevice/config')).json();
    const pipe = await od.createPipeline(cfg);
    const frames = pictures.map((b64) => {
      const bin = atob(b64), rgba = new Uint8ClampedArray(width * height * 4);
      for (let i = 0, j = 0; j < bin.length; i += 4, j += 3) {
        rgba[i] = bin.charCodeAt(j); rgba[i + 1] = bin.charCodeAt(j + 1); rgba[i + 2] = bin.charCodeAt(j + 2);
        rgba[i + 3] = 255;
      }
      return rgba;
    });
    const out = [];
    for (let k = 0; k < order.length; k += 1) out.push(await pipe.analyse(frames[order[k]], width, height, times[k]));
    await pipe.close();
    return { faces: out, stats: pipe.stats };
  } finally { st.busy = false; }
}
"""


@pytest.fixture(scope="module")
def frames() -> dict[str, np.ndarray]:
    return face_frames()


@pytest.fixture(scope="module")
def camera_browser(tmp_path_factory: pytest.TempPathFactory, frames: dict[str, np.ndarray],
                   browser: Any) -> Iterator[Any]:
    clip = write_clip(tmp_path_factory.mktemp("ondevice") / "faces.y4m", list(frames.values()), hold=HOLD)
    with chromium(browser, clip) as faces_browser:
        yield faces_browser


@pytest.fixture(scope="module")
def python() -> Any:
    """Python's pipeline on the file the browser runs, loaded once for the module."""
    from classmood.server.ondevice import emotion_model_path
    from classmood.vision.classifier import EmotionClassifier
    from classmood.vision.pipeline import EmotionAnalyzer

    return EmotionAnalyzer(classifier=EmotionClassifier(emotion_model_path()))


@pytest.fixture(scope="module")
def student_page(live_server: LiveServer, camera_browser: Any) -> Iterator[Any]:
    """A student in an on-device class, the fake camera's faces in view, once the page's own analysis has run.

    The session's pictures come every 0.2 s (the shortest pace the page takes), so its first tick does not
    wait a second; the tests hold the page's busy flag while they work, so the ticks skip meanwhile.
    """
    teacher = new_teacher(live_server, "Ms Parity", "parity")
    session = api_session(live_server, teacher, title="Parity", analysis_mode="device", frame_interval_s=0.2)
    context = camera_browser.new_context(base_url=live_server.url)
    context.set_default_timeout(60_000)
    page = context.new_page()
    page.on("pageerror", lambda e: print("pageerror:", e))
    join(page, f"{live_server.url}/join/{session['code']}", "Pat")
    page.wait_for_function("() => window.cmStudent.pipeline && window.cmStudent.frameMs.length >= 1", timeout=30_000)
    yield page
    context.close()


def _nearest(pixels: np.ndarray, frames: dict[str, np.ndarray]) -> str:
    """Which fixture frame a camera picture shows (the clip's YUV round trip changes pixels a little)."""
    return min(frames, key=lambda k: float(np.abs(frames[k].astype(np.int16) - pixels).mean()))


def test_runtime_files_and_headers(live_server: LiveServer) -> None:
    """The wasm runtime comes from ClassMood with the right types; the student page is cross-origin isolated."""
    # httpx's default 5 s timeout is too short for a server on a busy machine (seen in a run under load)
    config = httpx.get(live_server.url + "/api/ondevice/config", timeout=30, verify=tls()).raise_for_status().json()
    assert config["runtime"]["available"], "onnxruntime-web is not installed: npm ci"
    wasm = httpx.get(live_server.url + config["runtime"]["wasm_paths"] + "ort-wasm-simd-threaded.wasm", timeout=30,
                     verify=tls())
    assert wasm.status_code == 200 and wasm.headers["content-type"] == "application/wasm"
    for name in ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs"):
        r = httpx.get(live_server.url + config["runtime"]["wasm_paths"] + name, timeout=30, verify=tls())
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    node = httpx.get(live_server.url + "/static/vendor/ort/ort.node.min.mjs", timeout=30, verify=tls())
    assert node.status_code == 404  # CPU build only
    page = httpx.get(live_server.url + "/join/ABCDEF", timeout=30, verify=tls())
    assert page.headers["cross-origin-embedder-policy"] == "require-corp"
    assert page.headers["cross-origin-opener-policy"] == "same-origin"
    csp = page.headers["content-security-policy"]
    assert "connect-src 'self'" in csp and "'wasm-unsafe-eval'" in csp and "worker-src 'self' blob:" in csp
    contract = config["contract"]
    head = next(h for h in contract["heads"] if h["name"] == contract["default_head"])
    model = httpx.get(live_server.url + config["emotion_model_url"], timeout=30, verify=tls())
    assert model.status_code == 200 and len(model.content) > 100_000
    import onnxruntime as ort

    outputs = [o.name for o in ort.InferenceSession(model.content).get_outputs()]
    assert head["output"] in outputs  # the page reads the default head's output named by the contract


def test_browser_matches_python(student_page: Any, python: Any, frames: dict[str, np.ndarray]) -> None:
    page = student_page
    assert page.evaluate("crossOriginIsolated") is True
    samples = page.evaluate(SAMPLES_JS, [len(frames), SAMPLE_MS])  # each different camera picture once

    faces = boxes = agree = ties = 0
    worst_box = worst_prob = 0.0
    kinds: dict[str, int] = {}
    times: list[float] = []
    for sample in samples:
        pixels = np.frombuffer(base64.b64decode(sample["rgb"]), np.uint8).reshape(sample["h"], sample["w"], 3).copy()
        times.append(sample["ms"])
        kind = _nearest(pixels, frames)
        kinds[kind] = kinds.get(kind, 0) + 1
        ours = python.analyze(pixels, bgr=False)
        theirs = sample["faces"]
        assert len(theirs) == len(ours), f"{kind}: browser found {len(theirs)} faces, Python {len(ours)}"
        for py, js in zip(ours, theirs, strict=True):
            faces += 1
            box_diff = float(np.abs(np.array(py.box) - np.array(js["box"])).max())
            prob_diff = float(np.abs(py.probs - np.array(js["probs"])).max())
            worst_box, worst_prob = max(worst_box, box_diff), max(worst_prob, prob_diff)
            boxes += box_diff <= BOX_PX
            top_two = np.sort(py.probs)[-2:]
            if float(top_two[1] - top_two[0]) < TIE_MARGIN:
                ties += 1
            else:
                agree += py.label == js["label"]
            assert prob_diff <= PROB_ABS, f"{kind}: probabilities differ by {prob_diff:.4f}"
    figures = {"frames": len(samples), "faces": faces, "kinds": kinds, "max_box_px": worst_box,
               "max_prob_abs": worst_prob, "ties": ties, "top_label_agreement": agree / max(faces - ties, 1),
               "browser_ms_median": float(np.median(times)) if times else None}
    ARTIFACTS.parent.mkdir(parents=True, exist_ok=True)
    Path(ARTIFACTS.parent / "ondevice-parity.json").write_text(json.dumps(figures, indent=1))
    print("on-device parity:", figures)
    assert {"multi", "dark", "tilted"} <= set(kinds), f"the camera pictures covered only {kinds}"
    assert boxes == faces, f"boxes differ by up to {worst_box:.2f} px"
    assert faces - ties >= 6, f"only {faces - ties} of {faces} faces have a clear top label"
    assert agree / (faces - ties) >= TOP_AGREEMENT


def _stream(frames: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
    """A class in frames: a face that stays, moves, leaves and comes back, and four faces at once."""
    portrait = frames["portrait"]
    moved = np.ascontiguousarray(np.roll(portrait, 24, axis=1))
    empty = np.full_like(portrait, 128)
    names = ["portrait", "portrait", "moved", "moved", "empty", "portrait", "multi", "multi", "portrait", "tilted"]
    pictures = {"moved": moved, "empty": empty, **frames}
    return [(name, pictures[name]) for name in names]


def test_stream_matches_python(student_page: Any, python: Any, frames: dict[str, np.ndarray]) -> None:
    """Region search, full-frame detections and the skip rule give the same faces in both runtimes."""
    stream = _stream(frames)
    times = [float(k) for k in range(len(stream))]  # one frame a second, the class's default
    names = list(dict.fromkeys(name for name, _ in stream))  # each different picture once
    pictures = [base64.b64encode(np.ascontiguousarray(dict(stream)[name]).tobytes()).decode() for name in names]
    order = [names.index(name) for name, _ in stream]
    h, w = stream[0][1].shape[:2]
    js = student_page.evaluate(STREAM_JS, [pictures, order, w, h, times])
    search = python.new_search()
    for (name, frame), t, theirs in zip(stream, times, js["faces"], strict=True):
        ours = python.analyze(frame, bgr=False, search=search, time_s=t)
        assert len(theirs) == len(ours), f"{name} at {t:g} s: browser found {len(theirs)} faces, Python {len(ours)}"
        for py, face in zip(ours, theirs, strict=True):
            assert float(np.abs(np.array(py.box) - np.array(face["box"])).max()) <= BOX_PX, name
            assert float(np.abs(py.probs - np.array(face["probs"])).max()) <= PROB_ABS, name
    ours_stats = {"full": search.full_detections, "scouts": search.scouts, "regions": search.region_detections,
                  "unchanged": search.unchanged,
                  "classified": search.classified, "skipped": search.skipped}
    print("stream parity:", ours_stats, js["stats"])
    assert js["stats"] == ours_stats
    assert search.region_detections >= 2 and search.unchanged >= 1 and search.skipped >= 1  # all rules ran
