"""Checks on incoming frames before any decoding, the per-participant frame rate limit, and the size limits of
frames and score batches.

The image header is read first, so that a small file claiming huge dimensions (a decompression
bomb) is refused before OpenCV allocates its pixels.

>>> image_kind(b"\\x89PNG\\r\\n\\x1a\\n....")
'png'
>>> image_kind(b"GIF89a")
"""

from __future__ import annotations

import struct
import threading
import time

from classmood.config import Settings
from classmood.server.errors import BadRequest, TooLarge, Unsupported

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (baseline, progressive, lossless...); C4, C8 and CC are other segments.
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def image_kind(data: bytes) -> str | None:
    """``'jpeg'``, ``'png'`` or ``None`` from the file's first bytes."""
    if data.startswith(JPEG_MAGIC):
        return "jpeg"
    if data.startswith(PNG_MAGIC):
        return "png"
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if marker in _SOF and pos + 9 <= len(data):
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        pos += 2 + length
    return None


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG or PNG header, or ``None`` when the header is unreadable."""
    kind = image_kind(data)
    if kind == "png" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if kind == "jpeg":
        return _jpeg_size(data)
    return None


def check_frame(data: bytes, settings: Settings) -> tuple[int, int]:
    """Refuse empty (400), oversized (413), non-image (415) or headerless (400) frames; return (w, h)."""
    if not data:
        raise BadRequest("empty frame")
    if len(data) > settings.max_frame_bytes:
        raise TooLarge(f"frame of {len(data)} bytes exceeds the limit of {settings.max_frame_bytes} bytes")
    if image_kind(data) is None:
        raise Unsupported("frames must be JPEG or PNG images")
    size = image_size(data)
    if size is None or 0 in size:
        raise BadRequest("the image header is damaged")
    if size[0] * size[1] > settings.max_frame_pixels:
        raise TooLarge(f"frame of {size[0]}x{size[1]} pixels exceeds the limit of {settings.max_frame_pixels} pixels")
    return size


class RateLimiter:
    """A token bucket per key (participant): ``rate`` frames per second with a small burst.

    >>> limiter = RateLimiter(rate=1.0, burst=2)
    >>> [limiter.acquire("p", now=0.0) == 0 for _ in range(3)]
    [True, True, False]
    """

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(2.0, 2 * rate)
        self._buckets: dict[object, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def acquire(self, key: object, now: float | None = None) -> float:
        """Take one token: 0.0 when allowed, else the seconds until one is available (nothing taken)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > 10_000:
                self._forget_idle(now)
            return (1.0 - tokens) / self.rate

    def _forget_idle(self, now: float) -> None:
        # Full buckets carry no information; dropping them keeps memory flat with many participants.
        full_after = self.burst / self.rate
        self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full_after}



BATCH_ITEM_BYTES = 1024  # generous size of one JSON observation, for the body cap of a batch
MULTIPART_OVERHEAD = 16 * 1024  # boundaries and part headers around a frame sent as multipart


def frame_body_limit(settings: Settings) -> int:
    """The largest body the frame endpoint reads: one frame, plus multipart framing."""
    return settings.max_frame_bytes + MULTIPART_OVERHEAD


def batch_body_limit(settings: Settings) -> int:
    """The largest body the batch endpoint reads: ``batch_max`` generous observations."""
    return settings.batch_max * BATCH_ITEM_BYTES + 1024


def check_batch_size(count: int, settings: Settings) -> None:
    """Refuse (413) a batch of more than ``batch_max`` observations (HTTP body and stream message alike)."""
    if count > settings.batch_max:
        raise TooLarge(f"{count} observations; send at most {settings.batch_max} per batch")


def check_batch_bytes(size: int, settings: Settings) -> None:
    """Refuse (413) a score batch of more than :func:`batch_body_limit` bytes: the one byte limit of a batch,
    whether it comes as an HTTP body or as a message on the student stream."""
    limit = batch_body_limit(settings)
    if size > limit:
        raise TooLarge(f"batch body exceeds {limit} bytes; send at most {settings.batch_max} observations")


def utf8_size(text: str, *, limit: int) -> int:
    """The UTF-8 size of ``text`` when it may exceed ``limit``, else ``len(text)`` (no copy for small texts).

    >>> utf8_size("é" * 10, limit=100), utf8_size("é" * 10, limit=15)
    (10, 20)
    """
    if len(text) * 4 <= limit:  # never more than 4 bytes per character
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))
