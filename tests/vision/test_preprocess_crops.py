"""Face crops framed like FER2013 (classmood.vision.preprocess), the one function training and inference share."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from classmood.vision.pipeline import EmotionAnalyzer
from classmood.vision.preprocess import (
    DEFAULT_GEOMETRY,
    INPUT_SIZE,
    CropGeometry,
    crop_face,
    crop_faces,
    face_frame,
    faces_to_input,
    to_grey,
)

MARKS = np.array([[30, 40], [70, 40], [50, 60], [35, 85], [65, 85]], np.float32)
BOX = np.array([0, 0, 100, 120], np.float32)


def test_face_frame_geometry() -> None:
    (cx, cy), side, angle = face_frame(BOX, MARKS, CropGeometry(scale=1.0, shift=0.0))
    assert (cx, cy) == (50.0, 62.5) and angle == 0.0
    wider = face_frame(BOX, MARKS, CropGeometry(scale=1.5, shift=0.0))[1]
    assert wider == pytest.approx(side * 1.5)
    shifted = face_frame(BOX, MARKS, CropGeometry(scale=1.0, shift=0.1))[0]
    assert shifted[1] == pytest.approx(cy - 0.1 * side)  # upwards in the image for an upright face


def test_face_frame_angle_follows_the_eyes() -> None:
    tilted = MARKS.copy()
    tilted[1] = [70, 60]  # right eye lower: the head leans 26.6 degrees clockwise on screen
    assert face_frame(BOX, tilted)[2] == pytest.approx(np.degrees(np.arctan2(20, 40)))
    assert face_frame(BOX, tilted, CropGeometry(align=False))[2] == 0.0


def test_crop_is_48_grey_uint8_even_at_the_border() -> None:
    grey = np.random.default_rng(0).integers(0, 255, (100, 100), dtype=np.uint8)
    crop = crop_face(grey, [-40, -40, 30, 30], MARKS - 60)
    assert crop.shape == (INPUT_SIZE, INPUT_SIZE) and crop.dtype == np.uint8
    assert crop_faces(grey, np.zeros((0, 15), np.float32)).shape == (0, INPUT_SIZE, INPUT_SIZE)


def test_alignment_undoes_a_head_tilt(analyzer: EmotionAnalyzer, astronaut: np.ndarray) -> None:
    grey = to_grey(astronaut)
    upright = analyzer.detect(astronaut)[0]
    crop0 = crop_faces(grey, upright[None])[0].astype(float)
    centre = ((upright[0] + upright[2]) / 2, (upright[1] + upright[3]) / 2)
    turned = cv2.warpAffine(grey, cv2.getRotationMatrix2D(centre, 25, 1.0), grey.shape[::-1],
                            borderMode=cv2.BORDER_REFLECT)
    row = analyzer.detect(turned)[0]
    aligned = crop_faces(turned, row[None])[0].astype(float)
    plain = crop_faces(turned, row[None], CropGeometry(DEFAULT_GEOMETRY.scale, DEFAULT_GEOMETRY.shift, False))[0]

    def corr(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.corrcoef(a.ravel(), b.astype(float).ravel())[0, 1])

    assert corr(crop0, aligned) > 0.75
    assert corr(crop0, aligned) > corr(crop0, plain) + 0.1


def test_crops_feed_the_training_contract() -> None:
    grey = np.random.default_rng(1).integers(0, 255, (200, 200), dtype=np.uint8)
    rows = np.array([[50, 40, 150, 160, 0.9, *(MARKS + 50).ravel()]], np.float32)
    x = faces_to_input(crop_faces(grey, rows))
    assert x.shape == (1, 1, INPUT_SIZE, INPUT_SIZE) and abs(float(x.mean())) < 1e-4
