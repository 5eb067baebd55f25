"""Reading images and videos: frame selection, the moving-face track, and clear errors for bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from classmood.vision.pipeline import EmotionAnalyzer
from classmood.vision.video import (
    MediaError,
    Step,
    VideoError,
    camera_frames,
    expand_inputs,
    parse_every,
    read_frames,
    read_image,
    sniff,
)


@pytest.mark.parametrize(("text", "step"), [
    ("10", Step(frames=10)), (3, Step(frames=3)), ("1s", Step(seconds=1.0)), ("0.5s", Step(seconds=0.5)),
    ("250ms", Step(seconds=0.25)), ("5f", Step(frames=5)), (2.0, Step(seconds=2.0)),
])
def test_parse_every(text: str | int, step: Step) -> None:
    assert parse_every(text) == step


@pytest.mark.parametrize("bad", ["0", "-1", "abc", "1.5", "0s", 0, True, "1h"])
def test_parse_every_refuses_nonsense(bad: object) -> None:
    with pytest.raises(ValueError, match="every"):
        parse_every(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["avi", "mp4"])
def test_read_every_nth_frame_or_interval(media: dict[str, Path], kind: str) -> None:
    frames = list(read_frames(media[kind], every=5))
    assert [f.number for f in frames] == [0, 5, 10, 15, 20]
    assert [f.time_s for f in frames] == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0])
    assert frames[0].image.shape == (480, 640, 3) and frames[0].image.dtype == np.uint8
    by_time = list(read_frames(media[kind], every="0.7s"))
    assert [f.number for f in by_time] == [0, 7, 14, 21]


def test_analyze_video_keeps_one_id(analyzer: EmotionAnalyzer, media: dict[str, Path]) -> None:
    results = list(analyzer.analyze_video(media["mp4"], every=2))
    assert len(results) == 12
    assert all(len(r.faces) == 1 for r in results)
    assert {r.faces[0].face_id for r in results} == {0}
    assert results[0].source == str(media["mp4"])


def test_truncated_avi_yields_what_it_can_then_fails(media: dict[str, Path]) -> None:
    got = []
    with pytest.raises(VideoError, match=r"truncated\.avi: truncated or corrupt video: decoded \d+ of 24"):
        for frame in read_frames(media["truncated_avi"], every=1):
            got.append(frame.number)
    assert 0 < len(got) < 24


@pytest.mark.parametrize(("key", "message"), [
    ("truncated_mp4", "cannot open as a video"), ("text", "cannot open as a video"),
])
def test_unreadable_videos(media: dict[str, Path], key: str, message: str) -> None:
    with pytest.raises(VideoError, match=message):
        list(read_frames(media[key]))


def test_missing_video(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match="no such file"):
        list(read_frames(tmp_path / "gone.mp4"))


def test_read_image_errors(media: dict[str, Path], tmp_path: Path) -> None:
    assert read_image(media["astronaut"]).shape == (512, 512, 3)
    with pytest.raises(MediaError, match=r"corrupt\.jpg: not a readable image"):
        read_image(media["corrupt"])
    with pytest.raises(MediaError, match="no such file"):
        read_image(tmp_path / "gone.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(MediaError, match="empty file"):
        read_image(tmp_path / "empty.png")


def test_cut_off_png_is_reported_as_truncated(media: dict[str, Path], tmp_path: Path) -> None:
    import cv2

    png = tmp_path / "face.png"
    cv2.imwrite(str(png), read_image(media["astronaut"]))
    data = png.read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[: len(data) - 200])
    with pytest.raises(MediaError, match=r"cut\.png: (truncated image|not a readable image)"):
        read_image(cut)


def test_expand_inputs(media: dict[str, Path], tmp_path: Path) -> None:
    folder = media["astronaut"].parent
    sources, errors = expand_inputs([folder, tmp_path / "missing", media["text"]])
    kinds = {Path(s.name).name: s.kind for s in sources}
    assert kinds["astronaut.jpg"] == "image" and kinds["moving.mp4"] == "video" and kinds["notes.txt"] == "unknown"
    assert errors == [f"{tmp_path / 'missing'}: no such file or folder"]
    assert expand_inputs([tmp_path])[1] == [f"{tmp_path}: folder holds no images or videos"]


def test_sniff_unknown_suffix(media: dict[str, Path], tmp_path: Path) -> None:
    renamed = tmp_path / "photo.data"
    renamed.write_bytes(media["astronaut"].read_bytes())
    assert sniff(renamed) == "image"
    with pytest.raises(MediaError, match="not an image or a video"):
        sniff(media["text"])


def test_missing_camera() -> None:
    with pytest.raises(VideoError, match="camera 97: cannot open"):
        next(camera_frames(97))
