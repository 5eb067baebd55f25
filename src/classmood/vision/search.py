"""Where to look for faces in a stream of frames, and when a face need not be classified again.

A student fills much of a webcam picture and moves little between frames, so searching the whole frame
for faces of any size at every frame wastes most of the work. :class:`FaceSearch` keeps the faces of the
last frame and applies these rules, with the numbers of one :class:`SearchSettings` (the browser's
``ondevice.js`` reads the same object from ``GET /api/ondevice/config`` and follows the same steps):

1. **Full-frame detection** (at the pipeline's side for the frame, ``full_side``:
   :func:`classmood.vision.pipeline.detection_side`) when no face is tracked and the last full detection
   is ``full_every_s`` old (so a face that comes back is found within that time plus one frame
   interval; in between, a frame without tracked faces is not searched), when more than ``max_regions``
   faces are tracked, or when a tracked face was not found in its region (lost: looked for in the
   whole frame in the same frame).
2. Otherwise **region search**: each tracked face is looked for in the square of ``region_scale`` times
   its box's longer side around the box's centre (clipped to the frame, integer pixels), shrunk to at
   most ``region_side`` pixels; the region's best detection is that face. Regions that found the same
   face are merged by the detector's non-maximum suppression.
3. **Scout**: when the last full or scout detection is ``full_every_s`` old, the whole frame is detected
   at ``scout_scale`` times the full side first; its faces that overlap no tracked face (box IoU below
   ``match_iou``) are tracked from this frame on (a second face entering is found within
   ``full_every_s`` plus one frame interval) and searched in their regions like the others.
4. **Change gate**: every frame is summarised as the sum of R + 2G + B over every 4th pixel of each 16x16
   cell (:func:`change_map`); a cell has changed when that sum moved by more than ``change_level`` grey
   levels on average since a reference frame. Tracked faces whose regions hold no changed cell since
   their last region search keep their rows (no detection at all); a due scout or full detection waits
   until at least ``change_cells`` cells outside the tracked regions changed since the last one (someone
   may have come in), or ``scout_max_s`` passed. ``change_level`` 0 turns the gate off.
5. **Skip rule**: a face matched (box IoU >= ``match_iou``) to a face of the last frame keeps that face's
   probabilities when its 48x48 grey crop differs from the crop last classified for it by at most
   ``skip_mad`` grey levels on average and that classification is younger than ``skip_max_s``.

:data:`BASELINE` turns them off: a full detection and a classification of every face at every frame
(the pipeline before region search, with the file's test-time augmentation for every head), kept for
benchmarks and comparisons.

>>> region_around((100.0, 100.0, 200.0, 220.0), 640, 480, 2.0)
(30, 40, 270, 280)
>>> crop_unchanged(np.zeros((48, 48), np.uint8), np.ones((48, 48), np.uint8), 2.0)
True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from classmood.labels import LABELS
from classmood.vision.detector import BOX, COLUMNS, NMS_IOU, SCORE, Detections, empty_detections, nms

Image = npt.NDArray[np.uint8]
Rect = tuple[int, int, int, int]  # x0, y0, x1, y1: integer pixels, x1 and y1 excluded
# detect(image, max_side) -> rows in that image's pixels (max_side 0: full resolution)
Detect = Callable[[Image, int], Detections]
Classify = Callable[[Image], npt.NDArray[np.float32]]


@dataclass(frozen=True)
class SearchSettings:
    """The numbers of the rules (module docstring); one object read by Python and the browser."""

    region_search: bool = True
    region_scale: float = 2.0
    region_side: int = 96
    full_every_s: float = 1.5
    scout_scale: float = 0.8  # 256 of the 320 pixels of a webcam frame's full detection: faces of 40 px stay
    change_level: float = 8.0  # grey levels; 0: detect whatever changed
    change_cells: int = 2
    scout_max_s: float = 10.0
    max_regions: int = 2
    match_iou: float = 0.3
    skip_mad: float = 2.0  # grey levels; 0 classifies every crop
    skip_max_s: float = 5.0
    # False: every head mirrors as the file's `tta` says, as the browser did before the contract said it per
    # head (the int8 file's heads all follow the file's, so this changes nothing in Python)
    head_tta: bool = True
    # The browser only: False lets onnxruntime-web's idle threads sleep between pictures instead of spin-waiting
    # for the next one (its default, which the old pipeline kept): at one picture a second, spinning is pure cost.
    thread_spin: bool = False
    # The browser only: the frame rate the page asks of the camera (an ideal, never refused; 0: the camera's own,
    # 30 for most webcams, as the old pipeline had it). The page reads one picture a second; every other frame
    # only feeds the preview, and each costs the camera's process, the page and its compositor (at 30 fps the
    # preview alone was about a third of the page's CPU, docs/BENCHMARKS.md).
    camera_fps: float = 10.0

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready data (what the student page receives)."""
        return asdict(self)


SHIPPED = SearchSettings()
BASELINE = SearchSettings(region_search=False, skip_mad=0.0, change_level=0.0, head_tta=False, thread_spin=True,
                          camera_fps=0.0)
CELL, SAMPLE = 16, 4  # change cells are 16x16 pixels, sampled every 4th pixel each way
PRESETS = {"shipped": SHIPPED, "baseline": BASELINE}


def region_around(box: tuple[float, float, float, float] | npt.NDArray[np.float32], width: int, height: int,
                  scale: float) -> Rect:
    """The square of ``scale`` times the longer side of ``box`` (x1, y1, x2, y2) around its centre, in the frame."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    half = scale * max(x2 - x1, y2 - y1) / 2
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return (max(0, math.floor(cx - half)), max(0, math.floor(cy - half)),
            min(width, math.ceil(cx + half)), min(height, math.ceil(cy + half)))


def change_map(frame: Image) -> npt.NDArray[np.int64]:
    """Per 16x16 cell, the sum of R + 2G + B (the same sum for BGR; 4 x grey for grey) of every 4th pixel.

    >>> change_map(np.full((32, 48, 3), 10, np.uint8)).tolist()
    [[640, 640, 640], [640, 640, 640]]
    """
    rows, cols = frame.shape[0] // CELL, frame.shape[1] // CELL
    sub = frame[: rows * CELL : SAMPLE, : cols * CELL : SAMPLE].astype(np.int64)
    weighted = 4 * sub if sub.ndim == 2 else sub[..., 0] + 2 * sub[..., 1] + sub[..., 2]
    n = CELL // SAMPLE
    summed: npt.NDArray[np.int64] = weighted.reshape(rows, n, cols, n).sum(axis=(1, 3))
    return summed


def changed_cells(now: npt.NDArray[np.int64], before: npt.NDArray[np.int64] | None, level: float,
                  rects: list[Rect], inside: bool) -> int:
    """How many cells inside (or outside) ``rects`` moved by more than ``level`` grey levels (all: no reference)."""
    mask = np.zeros(now.shape, bool)
    for x0, y0, x1, y1 in rects:
        mask[y0 // CELL : -(-y1 // CELL), x0 // CELL : -(-x1 // CELL)] = True
    keep = mask if inside else ~mask
    if before is None or before.shape != now.shape:
        return int(keep.sum())
    moved = np.abs(now - before) > level * 4 * (CELL // SAMPLE) ** 2
    return int((moved & keep).sum())


def crop_unchanged(previous: Image | None, crop: Image, max_mad: float) -> bool:
    """Whether ``crop`` differs from ``previous`` by at most ``max_mad`` grey levels on average (0: never)."""
    if previous is None or max_mad <= 0 or previous.shape != crop.shape:
        return False
    total = int(np.abs(previous.astype(np.int32) - crop.astype(np.int32)).sum())
    return total <= max_mad * crop.size


def box_iou(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    """Overlap of two x1, y1, x2, y2 boxes (intersection over union)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(0.0, float(w)) * max(0.0, float(h))
    union = float((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])) - inter
    return inter / (union + 1e-9)


@dataclass
class _Face:
    box: npt.NDArray[np.float32]
    crop: Image  # the crop last classified
    probs: npt.NDArray[np.float32]
    classified_at: float


class FaceSearch:
    """The state of one stream (one camera, one student): its faces and its last full detection.

    Not thread-safe: one stream's frames go through it one at a time.
    """

    def __init__(self, settings: SearchSettings = SHIPPED) -> None:
        self.settings = settings
        self.full_detections = 0
        self.scouts = 0
        self.region_detections = 0
        self.unchanged = 0
        self.classified = 0
        self.skipped = 0
        self.reset()

    def reset(self) -> None:
        """Forget the faces: the next frame gets a full detection."""
        self._faces: list[_Face] = []
        self._rows = empty_detections()
        self._last_full: float | None = None
        self._scout_ref: npt.NDArray[np.int64] | None = None  # change map at the last full or scout detection
        self._region_ref: npt.NDArray[np.int64] | None = None  # ... at the last region search

    def detect(self, frame: Image, detect: Detect, time_s: float, full_side: int) -> Detections:
        """Rows (N, 15) of the faces in ``frame`` by rules 1-4; ``detect`` is the detector."""
        s = self.settings
        if not s.region_search:
            return self._full(frame, detect, time_s, full_side, None)
        cells = change_map(frame) if s.change_level > 0 else None
        regions = [region_around(f.box, frame.shape[1], frame.shape[0], s.region_scale) for f in self._faces]
        due = self._last_full is None or time_s - self._last_full >= s.full_every_s
        if due and cells is not None and self._last_full is not None and time_s - self._last_full < s.scout_max_s:
            due = changed_cells(cells, self._scout_ref, s.change_level, regions, False) >= s.change_cells
        if not self._faces:
            # nobody here: look again when a full detection is due
            return self._full(frame, detect, time_s, full_side, cells) if due else empty_detections()
        if len(self._faces) > s.max_regions:
            return self._full(frame, detect, time_s, full_side, cells)
        boxes = [f.box for f in self._faces]
        if due:
            self._last_full, self._scout_ref = time_s, cells
            self.scouts += 1
            boxes += self._new_faces(detect(frame, round(full_side * s.scout_scale)), boxes)
        if (len(boxes) == len(self._faces) and cells is not None
                and changed_cells(cells, self._region_ref, s.change_level, regions, True) == 0):
            self.unchanged += 1
            return self._rows.copy()  # nothing moved where the faces are: the same rows
        rows = self._search_regions(frame, boxes, detect) if len(boxes) <= s.max_regions else None
        if rows is None:
            return self._full(frame, detect, time_s, full_side, cells)
        self.region_detections += 1
        self._region_ref, self._rows = cells, rows
        return rows

    def _full(self, frame: Image, detect: Detect, time_s: float, full_side: int,
              cells: npt.NDArray[np.int64] | None) -> Detections:
        self._last_full, self._scout_ref, self._region_ref = time_s, cells, cells
        self.full_detections += 1
        self._rows = detect(frame, full_side)
        return self._rows

    def _new_faces(self, rows: Detections, boxes: list[npt.NDArray[np.float32]]) -> list[npt.NDArray[np.float32]]:
        """The boxes of the scout's rows that overlap no tracked box."""
        return [row[BOX].copy() for row in rows
                if all(box_iou(row[BOX], box) < self.settings.match_iou for box in boxes)]

    def _search_regions(self, frame: Image, boxes: list[npt.NDArray[np.float32]],
                        detect: Detect) -> Detections | None:
        height, width = frame.shape[:2]
        found = []
        for box in boxes:
            x0, y0, x1, y1 = region_around(box, width, height, self.settings.region_scale)
            rows = detect(frame[y0:y1, x0:x1], self.settings.region_side)
            if len(rows) == 0:
                return None  # lost: the caller looks in the whole frame
            best = rows[0].copy()
            best[[0, 2, 5, 7, 9, 11, 13]] += x0
            best[[1, 3, 6, 8, 10, 12, 14]] += y0
            found.append(best)
        rows = np.stack(found).astype(np.float32).reshape(-1, COLUMNS)
        rows = rows[np.argsort(-rows[:, SCORE], kind="stable")]
        kept: Detections = rows[nms(rows, NMS_IOU)]
        return kept

    def classify(self, rows: Detections, crops: Image, classify: Classify, time_s: float) -> npt.NDArray[np.float32]:
        """(N, 7) probabilities of the faces ``rows`` with crops ``crops`` (N, 48, 48), by rule 3."""
        matches = self._match(rows)
        todo = [k for k, m in enumerate(matches) if not self._reusable(m, crops[k], time_s)]
        fresh = classify(crops[todo]) if todo else None
        faces: list[_Face] = []
        out: list[npt.NDArray[np.float32]] = []
        for k, m in enumerate(matches):
            if fresh is not None and k in todo:
                p = fresh[todo.index(k)]
                faces.append(_Face(rows[k, BOX].copy(), crops[k], p, time_s))
            else:
                old = self._faces[m]
                p = old.probs
                faces.append(_Face(rows[k, BOX].copy(), old.crop, old.probs, old.classified_at))
            out.append(p)
        self.classified += len(todo)
        self.skipped += len(rows) - len(todo)
        self._faces = faces
        return np.stack(out).astype(np.float32) if out else np.zeros((0, len(LABELS)), np.float32)

    def _reusable(self, match: int, crop: Image, time_s: float) -> bool:
        if match < 0:
            return False
        face = self._faces[match]
        return (time_s - face.classified_at < self.settings.skip_max_s
                and crop_unchanged(face.crop, crop, self.settings.skip_mad))

    def _match(self, rows: Detections) -> list[int]:
        """For each row (best first), the index of the unclaimed last-frame face it overlaps most (-1: none)."""
        claimed: set[int] = set()
        out = []
        for row in rows:
            best, best_iou = -1, -1.0
            for i, face in enumerate(self._faces):
                overlap = box_iou(row[BOX], face.box)
                if i not in claimed and overlap >= self.settings.match_iou and overlap > best_iou:
                    best, best_iou = i, overlap
            if best >= 0:
                claimed.add(best)
            out.append(best)
        return out
