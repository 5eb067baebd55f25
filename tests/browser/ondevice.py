"""Shared pieces of the on-device tests: real face frames for a fake camera, and a Chromium that plays them.

The frames are built from scikit-image's two portraits (the astronaut and the cameraman): one face, several
faces, a dark picture, a tilted head and a mirrored one, all 640x480 like a webcam.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from .conftest import CHROMIUM

Image = npt.NDArray[np.uint8]
SIZE = (640, 480)


def face_frames() -> dict[str, Image]:
    """Named RGB webcam frames with real faces (``multi`` has four, the others one)."""
    from skimage import data

    astronaut = data.astronaut()
    cameraman = cv2.cvtColor(data.camera(), cv2.COLOR_GRAY2RGB)
    portrait = np.full((SIZE[1], SIZE[0], 3), 128, np.uint8)
    portrait[:, 80:560] = cv2.resize(astronaut, (480, 480), interpolation=cv2.INTER_AREA)
    tilt = cv2.getRotationMatrix2D((SIZE[0] / 2, SIZE[1] / 2), 22, 1.0)
    multi = np.full_like(portrait, 128)
    head = cv2.resize(astronaut[10:290, 110:360], (200, 224), interpolation=cv2.INTER_AREA)
    other = cv2.resize(cameraman[60:260, 150:330], (180, 200), interpolation=cv2.INTER_AREA)
    multi[20:244, 10:210], multi[20:220, 230:410] = head, other
    multi[250:474, 420:620], multi[270:470, 60:240] = head[:, ::-1], other[:, ::-1]
    single = np.full_like(portrait, 90)
    single[40:440, 140:500] = cv2.resize(cameraman[40:300, 120:354], (360, 400), interpolation=cv2.INTER_AREA)
    return {
        "portrait": portrait,
        "dark": (portrait.astype(np.float32) * 0.22).astype(np.uint8),
        "tilted": cv2.warpAffine(portrait, tilt, SIZE, borderMode=cv2.BORDER_REPLICATE),
        "multi": multi,
        "mirror": np.ascontiguousarray(portrait[:, ::-1]),
        "cameraman": single,
    }


def write_clip(path: Path, frames: list[Image], *, hold: int, fps: int = 10) -> Path:
    """A Y4M (C420) clip showing each RGB frame for ``hold`` video frames, for Chromium's fake camera."""
    h, w = frames[0].shape[:2]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg XYSCSS=420JPEG\n".encode("ascii"))
        for frame in frames:
            planes = cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes()
            for _ in range(hold):
                f.write(b"FRAME\n" + planes)
    return path


@contextlib.contextmanager
def chromium(browser: Any, camera: Path) -> Iterator[Any]:
    """Another Debian Chromium from the running Playwright of ``browser``, with ``camera`` as its webcam.

    (A second ``sync_playwright()`` cannot run beside the session's, so the browser's own type launches it.)
    """
    other = browser.browser_type.launch(executable_path=str(CHROMIUM), headless=True, args=[
        "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={camera}", "--no-sandbox", "--disable-dev-shm-usage"])
    try:
        yield other
    finally:
        other.close()


# Runs in the student page, given [count, ms]: takes the camera's pictures until it has seen ``count`` different
# ones (or ``ms`` have passed) and analyses each new one with the page's pipeline from a fresh state (a
# full-frame detection: the page's stream has seen other pictures before). Returns them (base64 RGB) with the
# faces found. It holds the page's ``busy`` flag, so the page's own ticks skip meanwhile, as on a busy device.
# One call instead of one per picture: a picture already seen costs a draw, not an analysis and a transfer.
SAMPLES_JS = """
async ([count, ms]) => {
  const st = window.cmStudent;
  while (st.busy) await new Promise((r) => setTimeout(r, 10));
  st.busy = true;
  try {
    const video = document.getElementById('preview');
    const w = video.videoWidth, h = video.videoHeight;
    const canvas = document.createElement('canvas'); canvas.width = w; canvas.height = h;
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    const seen = new Set(), out = [], deadline = performance.now() + ms;
    while (out.length < count && performance.now() < deadline) {
      ctx.drawImage(video, 0, 0, w, h);
      const pixels = ctx.getImageData(0, 0, w, h).data;
      let key = ''; // every 16th pixel of every 16th row tells the clip's pictures apart
      for (let y = 0; y < h; y += 16) {
        for (let x = 0; x < w; x += 16) key += pixels.subarray((y * w + x) * 4, (y * w + x) * 4 + 3).join() + ';';
      }
      if (seen.has(key)) { await new Promise((r) => setTimeout(r, 30)); continue; }
      seen.add(key);
      st.pipeline.reset();
      const t0 = performance.now();
      const faces = await st.pipeline.analyse(pixels, w, h);
      const ms = performance.now() - t0;
      const rgb = new Uint8Array(w * h * 3);
      for (let i = 0, j = 0; i < pixels.length; i += 4, j += 3) {
        rgb[j] = pixels[i]; rgb[j + 1] = pixels[i + 1]; rgb[j + 2] = pixels[i + 2];
      }
      let bin = '';
      for (let i = 0; i < rgb.length; i += 0x8000) bin += String.fromCharCode(...rgb.subarray(i, i + 0x8000));
      out.push({ w, h, ms, rgb: btoa(bin), faces });
    }
    return out;
  } finally { st.busy = false; }
}
"""
