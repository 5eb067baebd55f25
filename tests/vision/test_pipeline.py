"""The frame-to-emotion pipeline end to end on real images, with the shipped ONNX model."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest

from classmood import EmotionAnalyzer as LazyAnalyzer
from classmood.benchmarks.pipeline import darken, inside, rotate
from classmood.labels import LABELS
from classmood.vision.pipeline import ROW_COLUMNS, EmotionAnalyzer, FaceResult, detection_side, results_to_dataframe


def test_lazy_import_from_package() -> None:
    assert LazyAnalyzer is EmotionAnalyzer


def test_astronaut_is_one_happy_face(analyzer: EmotionAnalyzer, astronaut: np.ndarray) -> None:
    # The shipped (final) model must call the smiling astronaut Happy.
    faces = analyzer.analyze(astronaut)
    assert len(faces) == 1
    face = faces[0]
    assert face.label == "Happy"
    assert face.probs.shape == (len(LABELS),)
    assert face.probs.sum() == pytest.approx(1.0, abs=1e-4)
    assert face.landmarks.shape == (5, 2)
    _, _, w, h = face.box
    assert inside(face.box, (150, 30, 150, 180)) and 50 < w < 200 and 60 < h < 220
    assert face.face_id is None and 0.5 <= face.score <= 1.0


def test_rgb_and_bgr_give_the_same_result(analyzer: EmotionAnalyzer, astronaut: np.ndarray) -> None:
    bgr = analyzer.analyze(astronaut)[0]
    rgb = analyzer.analyze(cv2.cvtColor(astronaut, cv2.COLOR_BGR2RGB), bgr=False)[0]
    np.testing.assert_allclose(bgr.probs, rgb.probs, atol=1e-5)
    np.testing.assert_allclose(bgr.box, rgb.box, atol=1e-3)


def test_grey_and_alpha_images_are_accepted(analyzer: EmotionAnalyzer, astronaut: np.ndarray) -> None:
    assert len(analyzer.analyze(cv2.cvtColor(astronaut, cv2.COLOR_BGR2GRAY))) == 1
    assert len(analyzer.analyze(cv2.cvtColor(astronaut, cv2.COLOR_BGR2BGRA))) == 1


def test_no_face_gives_an_empty_list(analyzer: EmotionAnalyzer) -> None:
    from skimage import data

    assert analyzer.analyze(np.zeros((480, 640, 3), np.uint8)) == []
    assert analyzer.analyze(cv2.cvtColor(data.coffee(), cv2.COLOR_RGB2BGR)) == []


def test_every_face_of_a_5x5_gallery_is_found(analyzer: EmotionAnalyzer, grid: tuple) -> None:
    frame, tiles = grid
    faces = analyzer.analyze(frame)
    assert frame.shape == (720, 1280, 3)
    for tile in tiles:
        assert sum(inside(f.box, tile) for f in faces) == 1, f"tile {tile}"
    assert len(faces) == 25


@pytest.mark.parametrize("gain", [0.25, 0.1])
def test_dark_frames(analyzer: EmotionAnalyzer, astronaut: np.ndarray, gain: float) -> None:
    faces = analyzer.analyze(darken(astronaut, gain=gain, noise=3.0))
    assert len(faces) == 1 and inside(faces[0].box, (150, 30, 150, 180))


@pytest.mark.parametrize("degrees", [-30, 30])
def test_tilted_heads_are_found_and_levelled(analyzer: EmotionAnalyzer, astronaut: np.ndarray, degrees: float) -> None:
    upright = analyzer.analyze(astronaut)[0]
    turned, region = rotate(astronaut, (150, 30, 150, 180), degrees)
    faces = analyzer.analyze(turned)
    assert len(faces) == 1 and inside(faces[0].box, region)
    # The eye line follows the head: cv2 turns counter-clockwise for positive angles (y points down).
    eye = faces[0].landmarks[1] - faces[0].landmarks[0]
    eye0 = upright.landmarks[1] - upright.landmarks[0]
    change = np.degrees(np.arctan2(eye[1], eye[0]) - np.arctan2(eye0[1], eye0[0]))
    assert change == pytest.approx(-degrees, abs=12)


def test_results_are_immutable(analyzer: EmotionAnalyzer, astronaut: np.ndarray) -> None:
    face = analyzer.analyze(astronaut)[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        face.label = "Sad"  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        face.probs[0] = 1.0
    assert face.replace(face_id=7).face_id == 7 and face.face_id is None


def test_analyze_is_thread_safe(analyzer: EmotionAnalyzer, astronaut: np.ndarray, grid: tuple) -> None:
    frames = [astronaut, grid[0], np.zeros((240, 320, 3), np.uint8)] * 4
    serial = [analyzer.analyze(f) for f in frames]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(analyzer.analyze, frames))
    for one, other in zip(serial, parallel, strict=True):
        assert len(one) == len(other)
        for a, b in zip(one, other, strict=True):
            np.testing.assert_allclose(a.probs, b.probs, atol=1e-5)
            assert a.box == pytest.approx(b.box)


@pytest.mark.parametrize(("frame", "message"), [
    (np.zeros((10, 10, 3), np.float32), "uint8"),
    (np.zeros((10, 10, 2), np.uint8), "shaped"),
    (np.zeros((0, 10, 3), np.uint8), "empty"),
    ([[0, 1], [2, 3]], "numpy"),
])
def test_bad_frames_are_refused_clearly(analyzer: EmotionAnalyzer, frame: object, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        analyzer.analyze(frame)  # type: ignore[arg-type]


def test_detection_side_by_frame_size() -> None:
    assert detection_side(480, 640, "auto") == 320
    assert detection_side(720, 1280, "auto") == 960
    assert detection_side(720, 1280, None) == 0
    assert detection_side(720, 1280, 480) == 480


def test_dataframe_from_faces_and_frames(analyzer: EmotionAnalyzer, astronaut: np.ndarray) -> None:
    faces = analyzer.analyze(astronaut)
    df = results_to_dataframe(faces)
    assert list(df.columns) == list(ROW_COLUMNS)
    assert len(df) == 1 and df.loc[0, "label"] == "Happy"
    assert df.loc[0, list(LABELS)].to_numpy(float) == pytest.approx(faces[0].probs, abs=1e-6)
    assert df.loc[0, "box_w"] == pytest.approx(faces[0].box[2])
    tracked = list(analyzer.track([astronaut, astronaut], fps=2.0, source="two"))
    df2 = results_to_dataframe(tracked)
    assert df2["face_id"].tolist() == [0, 0]
    assert df2["time_s"].tolist() == [0.0, 0.5] and df2["source"].tolist() == ["two", "two"]
    assert results_to_dataframe([]).columns.tolist() == list(ROW_COLUMNS)


def test_face_result_records_hold_all_emotions() -> None:
    from classmood.vision.pipeline import face_record

    probs = np.full(7, 1 / 7, np.float32)
    face = FaceResult((1.0, 2.0, 3.0, 4.0), 0.9, probs, "Angry", np.zeros((5, 2), np.float32), 3)
    rec = face_record(face)
    assert set(rec["probs"]) == set(LABELS) and rec["box"] == [1.0, 2.0, 3.0, 4.0] and rec["face_id"] == 3
