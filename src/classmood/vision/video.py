"""Reading images, video files and cameras as frames, with clear errors for bad input.

>>> for frame in read_frames("class.mp4", every="1s"):   # doctest: +SKIP
...     print(frame.number, frame.time_s, frame.image.shape)
0 0.0 (720, 1280, 3)
25 1.0 (720, 1280, 3)

Frames stay in memory; nothing is written anywhere.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import numpy.typing as npt

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".pgm", ".ppm", ".jp2"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".webm", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".wmv"})
Every = int | float | str
# CAP_PROP_FRAME_COUNT is read from the container's header (or estimated from its duration), so a
# few frames' difference is normal; more than this means the file ends early.
TRUNCATION_TOLERANCE = 0.02


class MediaError(ValueError):
    """An input that cannot be analysed; the message names the file and the reason."""


class VideoError(MediaError):
    """A video or camera that cannot be opened, or a video that ends before its declared length."""


class VideoFrame(NamedTuple):
    """One frame: its number in the video (from 0), its time in seconds and the BGR uint8 image."""

    number: int
    time_s: float
    image: npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Step:
    """Which frames to analyse: every ``frames``-th frame, or one per ``seconds``."""

    frames: int | None = None
    seconds: float | None = None


def parse_every(every: Every) -> Step:
    """``10`` or ``"10"``: every 10th frame; ``"1s"``, ``"0.5s"``, ``"500ms"``: one frame per interval.

    >>> parse_every("10"), parse_every("0.5s")
    (Step(frames=10, seconds=None), Step(frames=None, seconds=0.5))
    """
    if isinstance(every, bool):
        raise ValueError(f"invalid --every {every!r}")
    if isinstance(every, int):
        if every < 1:
            raise ValueError(f"--every must be at least 1 frame, got {every}")
        return Step(frames=every)
    if isinstance(every, float):
        return _seconds(every, every)
    text = str(every).strip().lower()
    match = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)\s*(s|sec|ms|f|frames?)?", text)
    if not match:
        raise ValueError(f"invalid --every {every!r}: use a frame count (10) or a duration (1s, 0.5s, 500ms)")
    value, unit = float(match.group(1)), match.group(2) or "f"
    if unit in ("s", "sec", "ms"):
        return _seconds(value / 1000 if unit == "ms" else value, every)
    if value != int(value) or value < 1:
        raise ValueError(f"invalid --every {every!r}: a frame count must be a whole number of at least 1")
    return Step(frames=int(value))


def _seconds(value: float, original: Every) -> Step:
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"invalid --every {original!r}: the interval must be positive")
    return Step(seconds=value)


def read_image(path: str | Path) -> npt.NDArray[np.uint8]:
    """Decode an image file to BGR uint8 (EXIF orientation applied); :class:`MediaError` if impossible."""
    path = Path(path)
    if not path.exists():
        raise MediaError(f"{path}: no such file")
    if not path.is_file():
        raise MediaError(f"{path}: not a file")
    data = np.fromfile(str(path), np.uint8)  # reads non-ASCII paths too, unlike cv2.imread on Windows
    if data.size == 0:
        raise MediaError(f"{path}: empty file")
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise MediaError(f"{path}: not a readable image (corrupt or unsupported format)")
    if _truncated(data):
        raise MediaError(f"{path}: truncated image (the file ends before the image does)")
    return np.asarray(image, np.uint8)


def _truncated(data: npt.NDArray[np.uint8]) -> bool:
    """JPEG and PNG files end with a marker; decoders fill a cut-off file with grey instead of failing."""
    head, tail = data[:8].tobytes(), data[-32:].tobytes()
    if head.startswith(b"\xff\xd8"):
        return b"\xff\xd9" not in tail
    if head.startswith(b"\x89PNG"):
        return b"IEND" not in tail
    return False


def open_video(path: str | Path) -> cv2.VideoCapture:
    """An opened capture for a video file, or :class:`VideoError` saying why not."""
    path = Path(path)
    if not path.exists():
        raise VideoError(f"{path}: no such file")
    if not path.is_file() or path.stat().st_size == 0:
        raise VideoError(f"{path}: empty or not a file")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise VideoError(f"{path}: cannot open as a video (corrupt, truncated or unsupported format)")
    return capture


def video_length(path: str | Path) -> tuple[float, int]:
    """``(frames per second, declared frame count)``; either may be 0 when the container does not say."""
    capture = open_video(path)
    try:
        return _fps(capture), max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
    finally:
        capture.release()


def _fps(capture: cv2.VideoCapture) -> float:
    fps = float(capture.get(cv2.CAP_PROP_FPS))
    return fps if math.isfinite(fps) and 0 < fps < 1000 else 0.0


def read_frames(path: str | Path, every: Every = 1) -> Iterator[VideoFrame]:
    """The chosen frames of a video file. Raises :class:`VideoError` if it cannot be opened, has no
    decodable frame, or ends clearly before its declared length (after yielding what it could read)."""
    step = parse_every(every)
    capture = open_video(path)
    try:
        fps, declared = _fps(capture), max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
        index, next_time = 0, 0.0
        while True:
            time_s = index / fps if fps else float(capture.get(cv2.CAP_PROP_POS_MSEC)) / 1000
            wanted = (index % step.frames == 0) if step.frames else time_s + 1e-6 >= next_time
            if not wanted:
                if not capture.grab():
                    break
            else:
                ok, image = capture.read()
                if not ok or image is None:
                    break
                if step.seconds:
                    next_time += step.seconds * max(1, math.floor((time_s + 1e-6 - next_time) / step.seconds) + 1)
                yield VideoFrame(index, time_s, np.asarray(image, np.uint8))
            index += 1
    finally:
        capture.release()
    _check_length(Path(path), index, declared)


def _check_length(path: Path, decoded: int, declared: int) -> None:
    if decoded == 0:
        raise VideoError(f"{path}: no frame could be decoded (corrupt or truncated video)")
    if declared and decoded < declared * (1 - TRUNCATION_TOLERANCE) - 1:
        raise VideoError(f"{path}: truncated or corrupt video: decoded {decoded} of {declared} frames")


def camera_frames(index: int = 0, every: Every = "1s", duration: float | None = None) -> Iterator[VideoFrame]:
    """Frames from a camera (OpenCV device ``index``) until ``duration`` seconds pass or the caller stops.

    Every frame is read (so the camera's buffer never serves stale images) and only the chosen ones
    are yielded; ``time_s`` counts from the first frame.
    """
    step = parse_every(every)
    capture = cv2.VideoCapture(index)
    if not capture.isOpened():
        capture.release()
        raise VideoError(f"camera {index}: cannot open (no such device, or it is busy)")
    try:
        start, count, next_time = time.monotonic(), 0, 0.0
        while duration is None or time.monotonic() - start < duration:
            ok, image = capture.read()
            if not ok or image is None:
                raise VideoError(f"camera {index}: stopped delivering frames")
            time_s = time.monotonic() - start
            wanted = (count % step.frames == 0) if step.frames else time_s >= next_time
            if wanted:
                next_time = time_s + (step.seconds or 0.0)
                yield VideoFrame(count, time_s, np.asarray(image, np.uint8))
            count += 1
    finally:
        capture.release()


# --- Inputs of `classmood analyze` ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    """One input: ``kind`` is ``image``, ``video`` or ``camera``; ``name`` is what the output calls it."""

    kind: str
    name: str
    path: Path | None = None
    camera: int | None = None


def media_kind(path: Path) -> str | None:
    """``image`` or ``video`` by the file's suffix; ``None`` when the suffix says neither."""
    suffix = path.suffix.lower()
    return "image" if suffix in IMAGE_SUFFIXES else "video" if suffix in VIDEO_SUFFIXES else None


def expand_inputs(paths: list[Path]) -> tuple[list[Source], list[str]]:
    """Sources for files and folders (searched recursively, sorted), plus one error line per bad path.

    A file with an unknown suffix is tried as an image, then as a video, when it is analysed.
    """
    sources: list[Source] = []
    errors: list[str] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and media_kind(p)
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not found:
                errors.append(f"{path}: folder holds no images or videos")
            sources += [Source(media_kind(p) or "image", str(p), p) for p in found]
        elif path.is_file():
            sources.append(Source(media_kind(path) or "unknown", str(path), path))
        else:
            errors.append(f"{path}: no such file or folder")
    return sources, errors


def sniff(path: Path) -> str:
    """Decide what an unknown-suffix file is: ``image`` or ``video``; :class:`MediaError` if neither."""
    data = np.fromfile(str(path), np.uint8)
    if data.size and cv2.imdecode(data, cv2.IMREAD_COLOR) is not None:
        return "image"
    capture = cv2.VideoCapture(str(path))
    try:
        if capture.isOpened() and capture.read()[0]:
            return "video"
    finally:
        capture.release()
    raise MediaError(f"{path}: not an image or a video (unknown format)")
