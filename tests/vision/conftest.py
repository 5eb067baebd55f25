"""Shared fixtures of the vision tests: the real analyzer and media built at run time from scikit-image."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from classmood.benchmarks.pipeline import gallery
from classmood.vision.pipeline import EmotionAnalyzer

Image = npt.NDArray[np.uint8]


@pytest.fixture(scope="session")
def analyzer() -> EmotionAnalyzer:
    return EmotionAnalyzer()


@pytest.fixture(scope="session")
def astronaut() -> Image:
    """scikit-image's astronaut (Eileen Collins, a public-domain NASA portrait) as BGR."""
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="session")
def cameraman() -> Image:
    from skimage import data

    return cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2BGR)


def head_tiles(astronaut: Image, cameraman: Image, count: int) -> list[Image]:
    """Head-and-shoulders crops of the two sample faces, mirrored and at varied brightness."""
    heads = [astronaut[10:290, 110:360], cameraman[60:260, 150:330]]
    heads += [h[:, ::-1] for h in heads]
    gains = np.linspace(0.6, 1.2, count)
    return [np.clip(heads[i % 4] * gains[i], 0, 255).astype(np.uint8) for i in range(count)]


@pytest.fixture(scope="session")
def grid(astronaut: Image, cameraman: Image) -> tuple[Image, list[tuple[int, int, int, int]]]:
    """A 5x5 video-call gallery at 1280x720 and the tile of each of its 25 faces."""
    return gallery(head_tiles(astronaut, cameraman, 25), size=(1280, 720), grid=5, fill=0.95)


def moving_face_frames(astronaut: Image, count: int = 24, size: tuple[int, int] = (640, 480)) -> list[Image]:
    """The astronaut's head sliding from left to right over a plain background."""
    head = cv2.resize(astronaut[20:280, 120:340], (150, 177), interpolation=cv2.INTER_AREA)
    frames = []
    for i in range(count):
        frame = np.full((size[1], size[0], 3), 80, np.uint8)
        x = 10 + i * (size[0] - head.shape[1] - 20) // (count - 1)
        frame[140:140 + head.shape[0], x:x + head.shape[1]] = head
        frames.append(frame)
    return frames


def write_video(path: Path, frames: list[Image], fps: float = 10.0) -> Path:
    """Write frames with OpenCV: MJPG for .avi, mp4v for .mp4."""
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.suffix == ".avi" else "mp4v"))
    writer = cv2.VideoWriter(str(path), fourcc, fps, (frames[0].shape[1], frames[0].shape[0]))
    assert writer.isOpened(), f"OpenCV cannot write {path.suffix} here"
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def truncate(path: Path, target: Path, fraction: float = 0.5) -> Path:
    data = path.read_bytes()
    target.write_bytes(data[: int(len(data) * fraction)])
    return target


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory, astronaut: Image) -> dict[str, Path]:
    """Good and bad input files for the reader and the CLI."""
    root = tmp_path_factory.mktemp("media")
    frames = moving_face_frames(astronaut)
    out = {"astronaut": root / "astronaut.jpg", "noface": root / "noface.png", "corrupt": root / "corrupt.jpg"}
    cv2.imwrite(str(out["astronaut"]), astronaut)
    cv2.imwrite(str(out["noface"]), np.full((240, 320, 3), 127, np.uint8))
    out["corrupt"].write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG")
    out["avi"] = write_video(root / "moving.avi", frames)
    out["mp4"] = write_video(root / "moving.mp4", frames)
    out["truncated_avi"] = truncate(out["avi"], root / "truncated.avi")
    out["truncated_mp4"] = truncate(out["mp4"], root / "truncated.mp4")
    out["text"] = root / "notes.txt"
    out["text"].write_text("not a picture\n")
    return out
