"""From a frame to emotions: detect faces, crop them as in training, classify them.

>>> analyzer = EmotionAnalyzer()
>>> faces = analyzer.analyze(frame)                  # a BGR uint8 image, as OpenCV reads it
>>> [(f.label, round(f.score, 2)) for f in faces]    # doctest: +SKIP
[('Happy', 0.92)]

Each step is one library call: :class:`~classmood.vision.detector.CenterFaceDetector` finds faces and
their landmarks, :func:`~classmood.vision.preprocess.crop_faces` cuts them out exactly as FER2013 frames
its faces (eyes level, measured margin), :class:`~classmood.vision.classifier.EmotionClassifier` gives the
seven probabilities. :meth:`EmotionAnalyzer.track` and :meth:`EmotionAnalyzer.analyze_video` add face
ids that persist across the frames of a video (:mod:`classmood.vision.tracking`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt

from classmood.labels import LABELS, top_label
from classmood.vision.classifier import EmotionClassifier
from classmood.vision.detector import THRESHOLD, CenterFaceDetector, FaceDetector
from classmood.vision.preprocess import CropGeometry, crop_faces, to_grey
from classmood.vision.search import SHIPPED, FaceSearch, SearchSettings
from classmood.vision.tracking import DEFAULT_SMOOTH_WINDOW_S, FaceTracker

if TYPE_CHECKING:
    import pandas as pd

    from classmood.vision.video import Every

# Webcam frames hold one large face: 320 pixels keep it well above CenterFace's smallest faces (~10 px) and
# detection at ~6 ms. Larger frames are usually recorded gallery views whose small tiles need 960.
WEBCAM_SIDE = 320
GALLERY_SIDE = 960
LARGE_FRAME = 800
MIN_FACE = 12.0  # pixels: smaller detections are too coarse to read an expression from
MaxSide = int | None | Literal["auto"]


@dataclass(frozen=True, eq=False)
class FaceResult:
    """One face in one frame. ``box`` is ``x, y, w, h`` in the frame's pixels; ``probs`` follow LABELS.

    ``landmarks`` is (5, 2): the eye on the image's left, the other eye, the nose tip, the mouth's
    left and right corners. ``face_id`` is set by tracking (videos), ``None`` for single images.
    """

    box: tuple[float, float, float, float]
    score: float
    probs: npt.NDArray[np.float32]
    label: str
    landmarks: npt.NDArray[np.float32]
    face_id: int | None = None

    def probs_dict(self) -> dict[str, float]:
        """Probabilities by emotion name, e.g. ``{"Angry": 0.01, ..., "Surprise": 0.02}``."""
        return {name: float(p) for name, p in zip(LABELS, self.probs, strict=True)}

    def replace(self, **changes: Any) -> FaceResult:
        """A copy with some fields changed (the result itself is immutable)."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class FrameResult:
    """The faces of one analysed frame of a video, camera or image (``frame`` 0, ``time_s`` 0.0)."""

    frame: int
    time_s: float
    faces: tuple[FaceResult, ...]
    source: str = ""


def _readonly(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    array.setflags(write=False)
    return array


def check_frame(frame: Any) -> npt.NDArray[np.uint8]:
    """Return ``frame`` if it is a non-empty uint8 grey, colour or colour+alpha image; raise otherwise."""
    if not isinstance(frame, np.ndarray):
        raise TypeError(f"expected a numpy image, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got dtype {frame.dtype}")
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (1, 3, 4)):
        raise ValueError(f"expected a grey or colour image shaped (H, W) or (H, W, 1|3|4), got {frame.shape}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise ValueError(f"empty image shaped {frame.shape}")
    return frame


def detection_side(height: int, width: int, max_side: MaxSide) -> int:
    """The longest side a frame is detected at (0: full resolution). ``auto`` picks by frame size."""
    if max_side == "auto":
        return WEBCAM_SIDE if max(height, width) <= LARGE_FRAME else GALLERY_SIDE
    return int(max_side or 0)


class EmotionAnalyzer:
    """Faces and their emotions in images and videos. Load once; ``analyze`` is thread-safe.

    ``max_side``: ``"auto"`` (320 for webcam-sized frames, 960 for larger ones), a number of
    pixels, or ``None`` for full resolution. ``min_face``: smaller boxes (pixels) are ignored.
    ``search``: how streams of frames (:meth:`track`, :meth:`new_search`) look for faces near where they
    were and skip unchanged crops (:mod:`classmood.vision.search`; ``BASELINE``: every frame in full).
    """

    def __init__(self, *, max_side: MaxSide = "auto", threshold: float = THRESHOLD, min_face: float = MIN_FACE,
                 geometry: CropGeometry | None = None, detector: FaceDetector | None = None,
                 classifier: EmotionClassifier | None = None, search: SearchSettings = SHIPPED) -> None:
        self.detector = detector or CenterFaceDetector(threshold=threshold)
        self.classifier = classifier or EmotionClassifier()
        self.max_side = max_side
        self.min_face = min_face
        self.search = search
        # The crop is part of the model's contract: a model trained on other crops says so in its file.
        self.geometry = geometry or self.classifier.contract.crop

    def detect(self, frame: npt.NDArray[np.uint8], bgr: bool = True, *,
               max_side: int | None = None) -> npt.NDArray[np.float32]:
        """Detector rows (N, 15) for the faces of at least ``min_face`` pixels.

        ``max_side`` overrides the analyzer's detection side (a region of a frame is detected at its own).
        """
        frame = check_frame(frame)
        side = detection_side(frame.shape[0], frame.shape[1], self.max_side) if max_side is None else max_side
        rows = self.detector.detect(frame, bgr, max_side=side)
        sizes = np.minimum(rows[:, 2] - rows[:, 0], rows[:, 3] - rows[:, 1])
        kept: npt.NDArray[np.float32] = rows[sizes >= self.min_face]
        return kept

    def new_search(self) -> FaceSearch:
        """The state of a new stream of frames (a camera, a student) for :meth:`analyze`'s ``search``."""
        return FaceSearch(self.search)

    def analyze(self, frame: npt.NDArray[np.uint8], bgr: bool = True, *, search: FaceSearch | None = None,
                time_s: float = 0.0) -> list[FaceResult]:
        """The faces in one BGR (default) or RGB uint8 image, best detection first; ``[]`` without faces.

        With ``search`` (:meth:`new_search`), the frame at ``time_s`` seconds is one of a stream: faces are
        looked for near where they were and unchanged crops keep their probabilities (:mod:`.search`).
        """
        if search is None:
            rows = self.detect(frame, bgr)
            if len(rows) == 0:
                return []
            probs = self.classifier.predict(crop_faces(to_grey(frame, bgr), rows, self.geometry))  # rows sum to 1
        else:
            frame = check_frame(frame)
            full_side = detection_side(frame.shape[0], frame.shape[1], self.max_side)
            rows = search.detect(frame, lambda image, side: self.detect(image, bgr, max_side=side), time_s, full_side)
            crops = crop_faces(to_grey(frame, bgr), rows, self.geometry)
            probs = search.classify(rows, crops, self.classifier.predict, time_s)
        return [_face(row, p) for row, p in zip(rows, probs, strict=True)]

    def track(self, frames: Iterable[npt.NDArray[np.uint8] | tuple[int, float, npt.NDArray[np.uint8]]], *,
              bgr: bool = True, window_s: float | None = DEFAULT_SMOOTH_WINDOW_S, fps: float | None = None,
              source: str = "") -> Iterator[FrameResult]:
        """Analyse a sequence of frames, giving each person a ``face_id`` that persists across frames.

        Items are images or ``(frame index, time in s, image)`` tuples such as
        :func:`classmood.vision.video.read_frames` yields. Each face's probabilities are averaged over
        its readings of the last ``window_s`` seconds (0 or ``None``: raw readings).
        """
        tracker = FaceTracker(window_s=window_s)
        search = self.new_search()
        for position, item in enumerate(frames):
            if isinstance(item, tuple):
                index, time_s, image = item
            else:
                index, time_s, image = position, position / fps if fps else float(position), item
            found = self.analyze(image, bgr=bgr, search=search, time_s=float(time_s))
            faces = tracker.update(found, time_s=float(time_s))
            yield FrameResult(index, float(time_s), tuple(faces), source)

    def analyze_video(self, path: str | Path, *, every: Every = 1,
                      window_s: float | None = DEFAULT_SMOOTH_WINDOW_S) -> Iterator[FrameResult]:
        """Analyse a video file with tracking: one :class:`FrameResult` per analysed frame.

        ``every``: analyse every n-th frame (int) or one frame per interval (``"1s"``, ``"0.5s"``).
        Raises :class:`classmood.vision.video.VideoError` for an unreadable or truncated file.
        """
        from classmood.vision.video import read_frames

        yield from self.track(read_frames(path, every=every), window_s=window_s, source=str(path))


def _face(row: npt.NDArray[np.float32], probs: npt.NDArray[np.float32]) -> FaceResult:
    x1, y1, x2, y2 = (float(v) for v in row[:4])
    return FaceResult(box=(x1, y1, x2 - x1, y2 - y1), score=float(row[4]),
                      probs=_readonly(np.array(probs, np.float32)), label=LABELS[top_label(probs)],
                      landmarks=_readonly(np.array(row[5:15], np.float32).reshape(5, 2)))


# --- Tables ----------------------------------------------------------------------------------------------------
ROW_COLUMNS = ("source", "frame", "time_s", "face_id", "box_x", "box_y", "box_w", "box_h", "score", "label",
               *LABELS)


def face_record(face: FaceResult, frame: FrameResult | None = None, digits: int = 6) -> dict[str, Any]:
    """A JSON-ready record of one face: source, frame, time_s, face_id, box, label, score, probs.

    Floats are rounded to ``digits`` decimals (a millionth is far below the model's own precision).
    """
    return {"source": frame.source if frame else "", "frame": frame.frame if frame else 0,
            "time_s": round(frame.time_s, digits) if frame else 0.0, "face_id": face.face_id,
            "box": [round(v, 2) for v in face.box], "label": face.label, "score": round(face.score, digits),
            "probs": {k: round(v, digits) for k, v in face.probs_dict().items()}}


def face_row(face: FaceResult, frame: FrameResult | None = None) -> dict[str, Any]:
    """A flat row (:data:`ROW_COLUMNS`) at full precision: the box and the probabilities one column each."""
    x, y, w, h = face.box
    return {"source": frame.source if frame else "", "frame": frame.frame if frame else 0,
            "time_s": frame.time_s if frame else 0.0, "face_id": face.face_id,
            "box_x": x, "box_y": y, "box_w": w, "box_h": h, "score": face.score, "label": face.label,
            **face.probs_dict()}


def results_to_dataframe(results: Sequence[FaceResult] | Iterable[FrameResult]) -> pd.DataFrame:
    """One row per face (columns :data:`ROW_COLUMNS`) from ``analyze``'s list or frames from ``track``.

    >>> results_to_dataframe(EmotionAnalyzer().analyze(frame))[["label", "Happy"]]  # doctest: +SKIP
    """
    import pandas as pd

    rows: list[dict[str, Any]] = []
    for item in results:
        if isinstance(item, FaceResult):
            rows.append(face_row(item))
        else:
            rows.extend(face_row(face, item) for face in item.faces)
    frame = pd.DataFrame(rows, columns=list(ROW_COLUMNS))
    return frame.astype({"face_id": "Int64", "frame": "int64"})
