"""Reading a frame from an HTTP request: raw image bytes or a multipart field, in memory only.

Starlette's form parser spools uploads over 1 MB to a temporary file; frames must never touch the
disk, so multipart bodies are parsed here with python-multipart into memory, after a size cap.
"""

from __future__ import annotations

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from classmood.server.errors import BadRequest, TooLarge, Unsupported
from classmood.server.observations.limits import MULTIPART_OVERHEAD

IMAGE_TYPES = frozenset({"image/jpeg", "image/jpg", "image/png"})


async def read_capped(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) as soon as it exceeds ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class _Parts:
    """python-multipart callbacks collecting each named part's bytes."""

    def __init__(self) -> None:
        self.parts: dict[str, bytearray] = {}
        self.name: str | None = None
        self.header, self.value = b"", b""

    def on_part_begin(self) -> None:
        self.name = None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.value += data[start:end]

    def on_header_end(self) -> None:
        if self.header.lower() == b"content-disposition":
            _, disposition = parse_options_header(self.value)
            self.name = disposition.get(b"name", b"").decode("latin-1")
            self.parts.setdefault(self.name, bytearray())
        self.header, self.value = b"", b""

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.name is not None:
            self.parts[self.name] += data[start:end]


def multipart_field(body: bytes, content_type: str, field: str) -> bytes:
    """The bytes of one multipart/form-data field (400 when it is missing)."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise BadRequest("multipart body without a boundary")
    parts = _Parts()
    callbacks = {name: getattr(parts, name) for name in ("on_part_begin", "on_header_field", "on_header_value",
                                                          "on_header_end", "on_part_data")}
    parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    try:
        parser.write(body)
        parser.finalize()
    except Exception as exc:  # python-multipart raises several error types for broken bodies
        raise BadRequest(f"malformed multipart body: {exc}") from exc
    if field not in parts.parts:
        raise BadRequest(f"multipart body without a '{field}' field")
    return bytes(parts.parts[field])


async def read_frame(request: Request, max_bytes: int) -> bytes:
    """The frame of a request: ``image/jpeg``/``image/png`` bytes or the multipart field ``frame``."""
    content_type = request.headers.get("content-type", "")
    kind = content_type.split(";")[0].strip().lower()
    if kind in IMAGE_TYPES:
        return await read_capped(request, max_bytes)
    if kind == "multipart/form-data":
        data = multipart_field(await read_capped(request, max_bytes + MULTIPART_OVERHEAD), content_type, "frame")
        if len(data) > max_bytes:
            raise TooLarge(f"frame of {len(data)} bytes exceeds the limit of {max_bytes} bytes")
        return data
    raise Unsupported("send the frame as image/jpeg, image/png or the multipart field 'frame'")
