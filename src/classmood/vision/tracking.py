"""Keeping each person's id across the frames of a video: a small IoU-then-centroid tracker.

Faces in a class video move little between analysed frames, and a gallery tile does not move at
all, so a greedy match on box overlap (IoU) settles almost every case. When frames are far apart
(``--every 1s``) or a head moves fast, boxes may not overlap; then the nearest centre within 2.5 face
widths, of a similar size, wins. A track survives ``max_missed`` frames without its face (someone
looking away) before its id is retired; ids are never reused.

Readings are steadied per track by default: each face's probabilities are the mean of its readings over the
last :data:`DEFAULT_SMOOTH_WINDOW_S` seconds (``window_s``), so one odd frame does not flip a label. Stored
observations stay raw; only what is shown is smoothed.

>>> tracker = FaceTracker(window_s=2.0)
>>> faces = tracker.update(analyzer.analyze(frame), time_s=12.0)   # doctest: +SKIP
>>> [f.face_id for f in faces]                        # doctest: +SKIP
[0]
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from classmood.labels import LABELS, top_label

if TYPE_CHECKING:
    from classmood.vision.pipeline import FaceResult

Box = npt.NDArray[np.float64]  # x, y, w, h
# Readings over this many seconds are averaged: at one analysed frame per second (the classroom default) that is
# the last three readings, short enough that a real change of expression shows within two seconds.
DEFAULT_SMOOTH_WINDOW_S = 3.0


def window_mean(history: deque[tuple[float, npt.NDArray[np.float32]]], time_s: float,
                probs: npt.NDArray[np.float32], window_s: float) -> npt.NDArray[np.float32]:
    """Add a reading to ``history`` and return the mean of the readings newer than ``time_s - window_s``.

    >>> h = deque()
    >>> _ = window_mean(h, 0.0, np.array([1.0, 0.0], np.float32), 2.0)
    >>> window_mean(h, 1.0, np.array([0.0, 1.0], np.float32), 2.0).tolist()
    [0.5, 0.5]
    >>> window_mean(h, 2.5, np.array([0.0, 1.0], np.float32), 2.0).tolist()   # the first reading has expired
    [0.0, 1.0]
    """
    history.append((time_s, probs))
    while history and history[0][0] <= time_s - window_s:
        history.popleft()
    return np.asarray(np.mean([p for _, p in history], axis=0), np.float32)


@dataclass
class _Track:
    id: int
    box: Box
    velocity: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(2))
    missed: int = 0
    history: deque[tuple[float, npt.NDArray[np.float32]]] = field(default_factory=deque)

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
    """Assigns persistent ids to the faces of consecutive frames and steadies their probabilities.

    ``window_s``: each track's probabilities are averaged over its readings of the last ``window_s``
    seconds (0 or ``None``: raw readings). One tracker per video; not shared between threads.
    """

    def __init__(self, *, iou_threshold: float = 0.2, max_distance: float = 2.5, max_missed: int = 10,
                 window_s: float | None = DEFAULT_SMOOTH_WINDOW_S) -> None:
        if window_s is not None and not (window_s >= 0.0 and np.isfinite(window_s)):
            raise ValueError(f"the smoothing window must be a number of seconds >= 0, got {window_s}")
        self.iou_threshold = iou_threshold
        self.max_distance = max_distance
        self.max_missed = max_missed
        self.window_s = window_s or 0.0
        self._tracks: list[_Track] = []
        self._next_id = 0
        self._updates = 0

    def update(self, faces: Sequence[FaceResult], time_s: float | None = None) -> list[FaceResult]:
        """The same faces, in the same order, with ``face_id`` set and smoothed ``probs``.

        ``time_s``: when the frame was taken (seconds); without it, frames count as one second apart.
        """
        now = float(self._updates if time_s is None else time_s)
        self._updates += 1
        boxes = [np.asarray(f.box, np.float64) for f in faces]
        matches = self._match(boxes)
        out: list[FaceResult] = []
        for i, face in enumerate(faces):
            track = matches.get(i) or self._new_track(boxes[i])
            self._follow(track, boxes[i])
            out.append(self._smoothed(track, face, now))
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

    def _smoothed(self, track: _Track, face: FaceResult, now: float) -> FaceResult:
        if not self.window_s:
            return face.replace(face_id=track.id)
        smoothed = window_mean(track.history, now, np.asarray(face.probs, np.float32), self.window_s)
        smoothed.setflags(write=False)
        return face.replace(face_id=track.id, probs=smoothed, label=LABELS[top_label(smoothed)])
