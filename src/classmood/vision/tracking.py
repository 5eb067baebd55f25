"""Keeping each person's id across the frames of a video: a small IoU-then-centroid tracker.

Faces in a class video move little between analysed frames, and a gallery tile does not move at
all, so a greedy match on box overlap (IoU) settles almost every case. When frames are far apart
(``--every 1s``) or a head moves fast, boxes may not overlap; then the nearest centre within 2.5 face
widths, of a similar size, wins. A track survives ``max_missed`` frames without its face (someone
looking away) before its id is retired; ids are never reused.

>>> tracker = FaceTracker(smooth=0.5)
>>> faces = tracker.update(analyzer.analyze(frame))   # doctest: +SKIP
>>> [f.face_id for f in faces]                        # doctest: +SKIP
[0]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from classmood.labels import LABELS, top_label

if TYPE_CHECKING:
    from classmood.vision.pipeline import FaceResult

Box = npt.NDArray[np.float64]  # x, y, w, h


@dataclass
class _Track:
    id: int
    box: Box
    velocity: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(2))
    missed: int = 0
    probs: npt.NDArray[np.float32] | None = None

    def predicted(self) -> Box:
        """Where the face should be now if it keeps moving as it did (centre shifts, size stays)."""
        box = self.box.copy()
        box[:2] += self.velocity * (self.missed + 1)
        return box


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two ``x, y, w, h`` boxes.

    >>> iou(np.array([0, 0, 10, 10.]), np.array([5, 0, 10, 10.]))
    0.333...
    """
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inter = max(w, 0.0) * max(h, 0.0)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0


def affinity(track: Box, face: Box, iou_threshold: float, max_distance: float) -> float:
    """How well a face fits a track: above 1 when boxes overlap enough, (0, 1) when only centres are
    close (in face widths) and sizes similar, 0 for no match."""
    overlap = iou(track, face)
    if overlap >= iou_threshold:
        return 1.0 + overlap
    size_t, size_f = np.sqrt(track[2] * track[3]), np.sqrt(face[2] * face[3])
    if min(size_t, size_f) <= 0 or max(size_t, size_f) / min(size_t, size_f) > 1.6:
        return 0.0
    dx = (track[0] + track[2] / 2) - (face[0] + face[2] / 2)
    dy = (track[1] + track[3] / 2) - (face[1] + face[3] / 2)
    distance = float(np.hypot(dx, dy) / max(size_t, size_f))
    return max(0.0, 1.0 - distance / max_distance) * 0.999


class FaceTracker:
    """Assigns persistent ids to the faces of consecutive frames; optionally smooths their probabilities.

    ``smooth`` is the weight of the newest frame in an exponential moving average of each track's
    probabilities (``None``: no smoothing). One tracker per video; not shared between threads.
    """

    def __init__(self, *, iou_threshold: float = 0.2, max_distance: float = 2.5, max_missed: int = 10,
                 smooth: float | None = None) -> None:
        if smooth is not None and not 0.0 < smooth <= 1.0:
            raise ValueError(f"smooth must be in (0, 1], got {smooth}")
        self.iou_threshold = iou_threshold
        self.max_distance = max_distance
        self.max_missed = max_missed
        self.smooth = smooth
        self._tracks: list[_Track] = []
        self._next_id = 0

    def update(self, faces: Sequence[FaceResult]) -> list[FaceResult]:
        """The same faces, in the same order, with ``face_id`` set (and smoothed ``probs`` if asked)."""
        boxes = [np.asarray(f.box, np.float64) for f in faces]
        matches = self._match(boxes)
        out: list[FaceResult] = []
        for i, face in enumerate(faces):
            track = matches.get(i) or self._new_track(boxes[i])
            self._follow(track, boxes[i])
            out.append(self._smoothed(track, face))
        matched = {id(t) for t in matches.values()}
        for track in self._tracks:
            if id(track) not in matched:
                track.missed += 1
        self._tracks = [t for t in self._tracks if t.missed <= self.max_missed]
        for track in self._tracks:
            track.missed = max(track.missed, 0)
        return out

    def _match(self, boxes: list[Box]) -> dict[int, _Track]:
        """Greedy assignment, best affinity first: each track and each face used once."""
        pairs = []
        for t, track in enumerate(self._tracks):
            predicted = track.predicted()
            for f, box in enumerate(boxes):
                score = affinity(predicted, box, self.iou_threshold, self.max_distance)
                if score > 0:
                    pairs.append((score, t, f))
        used_t: set[int] = set()
        matches: dict[int, _Track] = {}
        for _, t, f in sorted(pairs, reverse=True):
            if t not in used_t and f not in matches:
                used_t.add(t)
                matches[f] = self._tracks[t]
        return matches

    def _new_track(self, box: Box) -> _Track:
        track = _Track(self._next_id, box.copy())
        self._next_id += 1
        self._tracks.append(track)
        return track

    @staticmethod
    def _follow(track: _Track, box: Box) -> None:
        # Velocity per analysed frame, damped so one jittery detection does not throw the track off.
        step = (box[:2] - track.box[:2]) / (track.missed + 1)
        track.velocity = 0.5 * track.velocity + 0.5 * step
        track.box = box.copy()
        track.missed = -1  # marks "seen this frame"; reset to 0 at the end of update()

    def _smoothed(self, track: _Track, face: FaceResult) -> FaceResult:
        if self.smooth is None:
            return face.replace(face_id=track.id)
        probs = np.asarray(face.probs, np.float32)
        track.probs = probs.copy() if track.probs is None else self.smooth * probs + (1 - self.smooth) * track.probs
        smoothed = np.array(track.probs, np.float32)
        smoothed.setflags(write=False)
        return face.replace(face_id=track.id, probs=smoothed, label=LABELS[top_label(smoothed)])
