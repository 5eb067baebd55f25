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

INPUT_SIZE = 48
STD_FLOOR = 1e-2  # an all-black crop has std 0; this keeps it finite (it maps to all zeros)


def standardize(faces: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
    """Standardise float faces in [0, 1] shaped (..., H, W) per image.

    >>> x = standardize(np.random.rand(2, 48, 48))
    >>> bool(abs(x.mean()) < 1e-5)
    True
    """
    x = np.asarray(faces, dtype=np.float32)
    mean = x.mean(axis=(-2, -1), keepdims=True)
    std = x.std(axis=(-2, -1), keepdims=True)
    return (x - mean) / np.maximum(std, STD_FLOOR)


def to_grey(image: npt.NDArray[np.uint8], bgr: bool = True) -> npt.NDArray[np.uint8]:
    """Return a 2-D grey image from a grey, BGR(A) or RGB(A) uint8 image."""
    if image.ndim == 2:
        return image
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    if image.ndim == 3 and image.shape[2] in (3, 4):
        code3, code4 = (cv2.COLOR_BGR2GRAY, cv2.COLOR_BGRA2GRAY) if bgr else (cv2.COLOR_RGB2GRAY, cv2.COLOR_RGBA2GRAY)
        return cv2.cvtColor(image, code3 if image.shape[2] == 3 else code4)
    raise ValueError(f"expected a grey or colour image, got an array shaped {image.shape}")


def resize_face(grey: npt.NDArray[np.uint8], size: int = INPUT_SIZE) -> npt.NDArray[np.uint8]:
    """Resize a grey crop to size x size (area interpolation when shrinking)."""
    if grey.shape == (size, size):
        return grey
    shrinking = grey.shape[0] > size or grey.shape[1] > size
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(grey, (size, size), interpolation=interp)


def faces_to_input(faces: npt.NDArray[np.uint8] | list[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]:
    """Turn uint8 grey crops, (N, H, W) or a list of 2-D crops of any size, into (N, 1, 48, 48) input.

    >>> faces_to_input(np.zeros((3, 48, 48), np.uint8)).shape
    (3, 1, 48, 48)
    """
    if isinstance(faces, np.ndarray):
        if faces.ndim == 2:
            faces = faces[None]
        if faces.ndim != 3:
            raise ValueError(f"expected grey faces shaped (N, H, W), got {faces.shape}")
        if faces.shape[1:] != (INPUT_SIZE, INPUT_SIZE):
            faces = np.stack([resize_face(f) for f in faces]) if len(faces) else faces.reshape(0, INPUT_SIZE, INPUT_SIZE)
    else:
        faces = np.stack([resize_face(np.asarray(f, np.uint8)) for f in faces]) if faces else np.zeros((0, INPUT_SIZE, INPUT_SIZE), np.uint8)
    x = standardize(np.asarray(faces, dtype=np.float32) / 255.0)
    return x[:, None, :, :]
