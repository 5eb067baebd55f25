"""Turning grey face crops into the classifier's input tensor.

This module is the single definition of the model's input contract. Training
(:mod:`classmood.ml`) and inference (:mod:`classmood.vision.classifier`) both call
:func:`standardize`, so a face is normalised the same way in both.

Contract: 48x48 grey pixels scaled to [0, 1], then standardised per image
(subtract the image's mean, divide by its standard deviation). Per-image
standardisation makes the classifier indifferent to a frame's brightness and
contrast, which matters for dark classroom webcams.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from classmood.vision.contract import INPUT_SIZE, STD_FLOOR, CropGeometry, Normalisation

DEFAULT_NORMALISATION = Normalisation()

__all__ = ["DEFAULT_GEOMETRY", "INPUT_SIZE", "STD_FLOOR", "CropGeometry", "crop_face", "crop_faces", "face_frame",
           "faces_to_input", "resize_face", "standardize", "to_grey"]


def standardize(faces: npt.NDArray[np.floating], std_floor: float = STD_FLOOR) -> npt.NDArray[np.float32]:
    """Standardise float faces in [0, 1] shaped (..., H, W) per image.

    >>> x = standardize(np.random.rand(2, 48, 48))
    >>> bool(abs(x.mean()) < 1e-5)
    True
    """
    x = np.asarray(faces, dtype=np.float32)
    mean = x.mean(axis=(-2, -1), keepdims=True)
    std = x.std(axis=(-2, -1), keepdims=True)
    return np.asarray((x - mean) / np.maximum(std, np.float32(std_floor)), np.float32)


def to_grey(image: npt.NDArray[np.uint8], bgr: bool = True) -> npt.NDArray[np.uint8]:
    """Return a 2-D grey image from a grey, BGR(A) or RGB(A) uint8 image."""
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    if image.ndim == 3 and image.shape[2] in (3, 4):
        code3, code4 = (cv2.COLOR_BGR2GRAY, cv2.COLOR_BGRA2GRAY) if bgr else (cv2.COLOR_RGB2GRAY, cv2.COLOR_RGBA2GRAY)
        return np.asarray(cv2.cvtColor(image, code3 if image.shape[2] == 3 else code4), np.uint8)
    raise ValueError(f"expected a grey or colour image, got an array shaped {image.shape}")


def resize_face(grey: npt.NDArray[np.uint8], size: int = INPUT_SIZE) -> npt.NDArray[np.uint8]:
    """Resize a grey crop to size x size (area interpolation when shrinking)."""
    if grey.shape == (size, size):
        return grey
    shrinking = grey.shape[0] > size or grey.shape[1] > size
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(grey, (size, size), interpolation=interp), np.uint8)


def faces_to_input(faces: npt.NDArray[np.uint8] | list[npt.NDArray[np.uint8]],
                   normalisation: Normalisation = DEFAULT_NORMALISATION) -> npt.NDArray[np.float32]:
    """Turn uint8 grey crops, (N, H, W) or a list of 2-D crops of any size, into (N, 1, 48, 48) input.

    ``normalisation`` comes from the model's contract; its defaults are the training recipe's.

    >>> faces_to_input(np.zeros((3, 48, 48), np.uint8)).shape
    (3, 1, 48, 48)
    """
    if isinstance(faces, np.ndarray):
        if faces.ndim == 2:
            faces = faces[None]
        if faces.ndim != 3:
            raise ValueError(f"expected grey faces shaped (N, H, W), got {faces.shape}")
        if faces.shape[1:] != (INPUT_SIZE, INPUT_SIZE):
            if len(faces):
                faces = np.stack([resize_face(f) for f in faces])
            else:
                faces = faces.reshape(0, INPUT_SIZE, INPUT_SIZE)
    else:
        empty = np.zeros((0, INPUT_SIZE, INPUT_SIZE), np.uint8)
        faces = np.stack([resize_face(np.asarray(f, np.uint8)) for f in faces]) if faces else empty
    x = np.asarray(faces, dtype=np.float32) * np.float32(normalisation.scale)
    if normalisation.per_image_standardise:
        x = standardize(x, normalisation.std_floor)
    return x[:, None, :, :]


# --- Face crops from detections -------------------------------------------------------------------------------
# FER2013's 48x48 crops are roughly square, upright-ish faces. A detected face is cut out the same way: the
# image is rotated so the eyes lie on a horizontal line, then a square is taken around the point halfway
# between the eyes' and the mouth's midpoints. The square's side is a multiple of the face's size, itself the
# geometric mean of two estimates that fail differently: the detector's box (grows when the head tilts) and
# the eye-to-mouth distance (shrinks when the head nods). `classmood bench pipeline` measures the multiple
# and the vertical shift on FER2013 PublicTest faces pasted into larger frames (see CropGeometry).

EYE_MOUTH_TO_FACE = 2.6  # median face-box height over eye-to-mouth distance, measured on pasted FER2013 faces


DEFAULT_GEOMETRY = CropGeometry()


def face_frame(box: npt.ArrayLike, landmarks: npt.ArrayLike,
               geometry: CropGeometry = DEFAULT_GEOMETRY) -> tuple[tuple[float, float], float, float]:
    """The crop square of one face: ``(centre x, centre y), side, angle in degrees``.

    ``box`` is ``x1, y1, x2, y2``; ``landmarks`` five ``x, y`` points (eyes, nose, mouth corners) as the
    detector returns them.

    >>> centre, side, angle = face_frame([0, 0, 100, 120], [[30, 40], [70, 40], [50, 60], [35, 85], [65, 85]],
    ...                                  CropGeometry(scale=1.0, shift=0.0))
    >>> centre, round(side, 1), angle
    ((50.0, 62.5), 113.2, 0.0)
    """
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box, np.float64)[:4])
    marks = np.asarray(landmarks, np.float64).reshape(5, 2)
    eyes, mouth = (marks[0] + marks[1]) / 2, (marks[3] + marks[4]) / 2
    dx, dy = marks[1] - marks[0]
    angle = float(np.degrees(np.arctan2(dy, dx))) if geometry.align else 0.0
    box_size = np.sqrt(max(x2 - x1, 1.0) * max(y2 - y1, 1.0))
    mouth_size = max(float(np.linalg.norm(mouth - eyes)) * EYE_MOUTH_TO_FACE, 1.0)
    side = float(geometry.scale * np.sqrt(box_size * mouth_size))
    centre = (eyes + mouth) / 2
    # "Up" in the face's own frame: perpendicular to the eye line.
    rad = np.radians(angle)
    centre = centre - geometry.shift * side * np.array([-np.sin(rad), np.cos(rad)])
    return (float(centre[0]), float(centre[1])), side, angle


def crop_face(grey: npt.NDArray[np.uint8], box: npt.ArrayLike, landmarks: npt.ArrayLike,
              geometry: CropGeometry = DEFAULT_GEOMETRY, size: int = INPUT_SIZE) -> npt.NDArray[np.uint8]:
    """Cut one face out of a grey image as a size x size uint8 crop framed like FER2013.

    Parts of the square outside the image repeat the border pixels, so faces at the edge keep
    their shape. The rotation is done at the face's own resolution, then :func:`resize_face`
    shrinks it with area interpolation (a single warp straight to 48 pixels would alias).
    """
    (cx, cy), side, angle = face_frame(box, landmarks, geometry)
    out = int(np.clip(round(side), size, 8 * size))
    matrix = cv2.getRotationMatrix2D((cx, cy), angle, out / side)
    matrix[0, 2] += out / 2 - cx
    matrix[1, 2] += out / 2 - cy
    warped = cv2.warpAffine(grey, matrix, (out, out), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return resize_face(np.asarray(warped, np.uint8), size)


def crop_faces(grey: npt.NDArray[np.uint8], detections: npt.NDArray[np.float32],
               geometry: CropGeometry = DEFAULT_GEOMETRY) -> npt.NDArray[np.uint8]:
    """Crops (N, 48, 48) for detector rows (N, 15): box ``x1, y1, x2, y2``, score, five landmarks."""
    if len(detections) == 0:
        return np.zeros((0, INPUT_SIZE, INPUT_SIZE), np.uint8)
    return np.stack([crop_face(grey, row[:4], row[5:15], geometry) for row in detections])
