"""The student stream: a WebSocket carrying frames in and acknowledgements out.

Protocol (text messages, JSON):

- the client connects to ``/api/sessions/{id}/stream?token=PARTICIPANT_TOKEN``;
- it sends ``{"id": uuid, "ts": epoch seconds (optional), "image": base64 JPEG (a data URL is fine)}``;
- the server answers each with ``{"type": "ack", "id", "faces", "duplicate"[, "label", "probs"]}`` or
  ``{"type": "error", "id", "detail", "status"}``, and keeps going after an error;
- it closes with a :class:`CloseCode`: a bad token, a token of another session, or the session's end.

Sending the same id again is answered ``duplicate`` and stored once.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from anyio import to_thread
from fastapi import WebSocket, WebSocketDisconnect

from classmood.server.deps import principal_from_token
from classmood.server.errors import DomainError, Forbidden, TooLarge, Unauthorized
from classmood.server.observations.ingest import FrameOutcome, Sender, ingest_frame
from classmood.server.sessions.models import Participant
from classmood.server.sessions.service import require_own_session
from classmood.server.state import ServerState

RATE_WAIT_S = 5.0  # a fast sender waits for its turn this long (back-pressure) before a 429 error


class CloseCode(IntEnum):
    """Why the server closed the stream (the student page reads them from its config, by these names)."""

    UNAUTHORIZED = 4401  # the token is missing, invalid or expired
    FORBIDDEN = 4403  # not a participant token, or one of another session
    SESSION_OVER = 4409  # the session has ended (or is not live)


def close_codes() -> dict[str, int]:
    """The close codes by name, for the browser.

    >>> close_codes()["session_over"]
    4409
    """
    return {code.name.lower(): int(code) for code in CloseCode}


def sender_of(participant: Participant) -> Sender:
    """The ingestion view of a participant row."""
    return Sender(participant.id, participant.session_id, participant.display_name)


@dataclass(frozen=True)
class FrameMessage:
    """One decoded frame message."""

    raw_id: str
    client_id: uuid.UUID
    ts: float | None
    image: bytes


def parse_message(text: str, max_bytes: int) -> FrameMessage:
    """Decode ``{"id", "ts", "image"}``; raise :class:`DomainError` for anything else."""
    try:
        message = json.loads(text)
    except ValueError as exc:
        raise DomainError("messages must be JSON objects") from exc
    if not isinstance(message, dict):
        raise DomainError("messages must be JSON objects")
    raw_id = str(message.get("id", ""))
    try:
        client_id = uuid.UUID(raw_id)
    except ValueError as exc:
        raise DomainError("id must be a uuid") from exc
    ts = message.get("ts")
    if ts is not None and (not isinstance(ts, int | float) or isinstance(ts, bool)):
        raise DomainError("ts must be epoch seconds")  # whether it is in the session's window: ingestion
    return FrameMessage(raw_id, client_id, None if ts is None else float(ts), _image(message.get("image"), max_bytes))


def _image(image: Any, max_bytes: int) -> bytes:
    if not isinstance(image, str) or not image:
        raise DomainError("image must be a base64 JPEG string")
    if "," in image[:64] and image.startswith("data:"):
        image = image.split(",", 1)[1]  # tolerate data URLs from canvas.toDataURL
    if len(image) * 3 // 4 > max_bytes:
        raise TooLarge(f"frame exceeds the limit of {max_bytes} bytes")
    try:
        return base64.b64decode(image, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DomainError("image is not valid base64") from exc


def ack(raw_id: str, outcome: FrameOutcome) -> dict[str, Any]:
    """The acknowledgement of a frame on the stream."""
    reply: dict[str, Any] = {"type": "ack", "id": raw_id, "faces": len(outcome.stored),
                             "duplicate": outcome.duplicate}
    if outcome.shed:
        reply["shed"] = True  # skipped under overload: nothing stored, and sending it again would not help
    if outcome.stored and outcome.meta.show_self:
        face = outcome.stored[0].face
        reply.update(label=face.label, probs=face.probs_dict())
    return reply


def error(raw_id: str | None, exc: DomainError) -> dict[str, Any]:
    """The error answer to a message (or to the connection, without an id)."""
    return {"type": "error", "id": raw_id, "detail": exc.detail, "status": exc.status}


def _id_of(text: str) -> str:
    try:
        value = json.loads(text)
        return str(value.get("id", "")) if isinstance(value, dict) else ""
    except ValueError:
        return ""


async def handle_message(websocket: WebSocket, state: ServerState, sender: Sender, text: str) -> bool:
    """Process one message; return False when the stream must close (session no longer live)."""
    try:
        message = parse_message(text, state.settings.max_frame_bytes)
        outcome = await ingest_frame(state, sender, message.image, client_id=message.client_id, ts=message.ts,
                                     rate_wait_s=RATE_WAIT_S)
    except DomainError as exc:
        await websocket.send_json(error(_id_of(text), exc))
        return exc.status != 409
    await websocket.send_json(ack(message.raw_id or str(message.client_id), outcome))
    return True


def _authenticate(state: ServerState, token: str, session_id: int) -> Sender:
    with state.sessions() as db:
        principal = principal_from_token(db, state, token)
        if principal.participant is None:
            raise Forbidden("the stream takes a participant token (from POST /api/join)")
        require_own_session(principal.participant, session_id)
        return sender_of(principal.participant)


async def serve_stream(websocket: WebSocket, state: ServerState, session_id: int, token: str) -> None:
    """Run one student's stream until the student leaves or the session ends."""
    await websocket.accept()
    try:
        sender = await to_thread.run_sync(_authenticate, state, token, session_id)
    except (Unauthorized, Forbidden) as exc:
        await websocket.send_json(error(None, exc))
        await websocket.close(code=CloseCode.UNAUTHORIZED if exc.status == 401 else CloseCode.FORBIDDEN)
        return
    while True:
        received = await websocket.receive()
        if received["type"] == "websocket.disconnect":
            return
        text = received.get("text")
        if text is None:
            await websocket.send_json({"type": "error", "id": None, "detail": "send JSON text messages", "status": 400})
            continue
        try:
            if not await handle_message(websocket, state, sender, text):
                await websocket.close(code=CloseCode.SESSION_OVER)
                return
        except WebSocketDisconnect:
            return
