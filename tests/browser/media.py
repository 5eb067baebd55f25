"""A fake webcam for Chromium: a YUV4MPEG2 (C420) clip of scikit-image's astronaut, made at test time.

Chromium's ``--use-file-for-fake-video-capture=FILE.y4m`` plays such a file in a loop as the camera.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt


def astronaut_frame(width: int = 640, height: int = 480) -> npt.NDArray[np.uint8]:
    """The astronaut portrait (RGB) scaled to ``height`` and centred on a grey ``width`` x ``height`` canvas."""
    from skimage import data

    img = data.astronaut()  # 512x512 RGB, a smiling face in the upper left
    scaled = cv2.resize(img, (height, height), interpolation=cv2.INTER_AREA)
    canvas = np.full((height, width, 3), 128, np.uint8)
    left = (width - height) // 2
    canvas[:, left : left + height] = scaled
    return canvas


def write_y4m(path: Path, frame_rgb: npt.NDArray[np.uint8], *, frames: int = 30, fps: int = 15) -> Path:
    """Write ``frames`` copies of an RGB frame (with a tiny shift so it is a real video) as Y4M C420."""
    h, w = frame_rgb.shape[:2]
    if w % 2 or h % 2:
        raise ValueError("Y4M C420 needs even width and height")
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg XYSCSS=420JPEG\n".encode("ascii"))
        for i in range(frames):
            shifted = np.roll(frame_rgb, (i % 3) - 1, axis=1)
            i420 = cv2.cvtColor(shifted, cv2.COLOR_RGB2YUV_I420)  # (h*3/2, w): Y plane, then U, then V
            f.write(b"FRAME\n")
            f.write(i420.tobytes())
    return path
