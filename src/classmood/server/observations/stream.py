"""The student stream: a WebSocket carrying frames or device scores in, and acknowledgements out.

Protocol (text messages, JSON):

- the client connects to ``/api/sessions/{id}/stream?token=PARTICIPANT_TOKEN`` (checked at connect, then
  every few seconds: the stream closes once the token expires, the participant is deleted or the session ends,
  even while the student sends nothing; see :mod:`.standing`);
- server analysis: it sends ``{"id": uuid, "ts": epoch seconds (optional), "image": base64 JPEG (a data URL is
  fine)}``; the server answers each with ``{"type": "ack", "id", "faces", "duplicate"[, "label", "probs"]}``
  or ``{"type": "error", "id", "detail", "status"}``;
- on-device analysis: it sends ``{"type": "scores", "batch": any short string, "observations": [{"id", "ts",
  "score", "probs"}, ...]}``, the body of ``POST /api/sessions/{id}/observations`` with the same rules (the same
  schema, the same checks and the same group-commit writer); the server answers each batch once its rows are
  committed with ``{"type": "scores_ack", "batch", "accepted": [ids], "duplicates": [ids]}`` or refuses the
  whole batch with ``{"type": "error", "batch", "id": null, "detail", "status"}`` (422 bad values, unknown
  fields or a time outside the session's live window, 413 too many observations or more bytes than the HTTP
  body may have, 409 session over, 503 database unavailable: send it again later);
- the server keeps going after an error, except a 409, after which it closes with
  :data:`CloseCode.SESSION_OVER`; it also closes with a :class:`CloseCode` for a bad token or a token of
  another session.

Sending the same id again (a frame, or a score in any batch) is answered ``duplicate`` and stored once.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
import uuid
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from anyio import to_thread
from fastapi import WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from classmood.server.deps import principal_from_token
from classmood.server.errors import (
    DomainError,
    Forbidden,
    TooLarge,
    Unauthorized,
    Unavailable,
    error_body,
    outage_as_unavailable,
    validation_detail,
)
from classmood.server.faces.ingest import record_no_face
from classmood.server.observations.context import Sender
from classmood.server.observations.ingest import FrameOutcome, device_items, ingest_batch, ingest_frame
from classmood.server.observations.limits import batch_body_limit, check_batch_bytes, check_batch_size, utf8_size
from classmood.server.observations.schemas import ScoresMessage
from classmood.server.observations.standing import Reason, standing
from classmood.server.sessions.models import Participant
from classmood.server.sessions.service import require_own_session
from classmood.server.state import ServerState
from classmood.server.validation import epoch_seconds

RATE_WAIT_S = 5.0  # a fast sender waits for its turn this long (back-pressure) before a 429 error


class CloseCode(IntEnum):
    """Why the server closed the stream (the student page reads them from its config, by these names)."""

    UNAUTHORIZED = 4401  # the token is missing, invalid or expired
    FORBIDDEN = 4403  # not a participant token, or one of another session
    SESSION_OVER = 4409  # the session has ended (or is not live)
    TRY_AGAIN_LATER = 1013  # RFC 6455's: the database is down for now


CLOSE_FOR: dict[Reason, tuple[CloseCode, str]] = {
    "session_over": (CloseCode.SESSION_OVER, "this class session has ended"),
    "removed": (CloseCode.UNAUTHORIZED, "this participant token is no longer valid"),
    "expired": (CloseCode.UNAUTHORIZED, "this participant token has expired; join again"),
}


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


def decode(text: str) -> dict[str, Any]:
    """The JSON object of a message; :class:`DomainError` (400) for anything else."""
    try:
        message = json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than the parser recurses
        raise DomainError("messages must be JSON objects") from exc
    if not isinstance(message, dict):
        raise DomainError("messages must be JSON objects")
    return message


def parse_message(message: dict[str, Any], max_bytes: int) -> FrameMessage:
    """Check a decoded frame message ``{"id", "ts", "image"}``; raise :class:`DomainError` for anything else."""
    raw_id = str(message.get("id", ""))
    try:
        client_id = uuid.UUID(raw_id)
    except ValueError as exc:
        raise DomainError("id must be a uuid") from exc
    raw_ts = message.get("ts")
    ts = None if raw_ts is None else epoch_seconds(raw_ts)  # whether it is in the session's window: ingestion
    return FrameMessage(raw_id, client_id, ts, _image(message.get("image"), max_bytes))


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


def scores_error(batch: Any, status: int, detail: Any) -> dict[str, Any]:
    """The refusal of a whole score batch (its ``detail`` shaped as the HTTP path's: a list for 422)."""
    return {"type": "error", "batch": batch, "id": None, "detail": detail, "status": status}


async def _send(websocket: WebSocket, reply: dict[str, Any]) -> None:
    # Every reply of the stream goes out here, as one text frame straight away (send_json adds a layer per
    # message). ASCII escapes: a reply that echoes a client's lone surrogate still encodes.
    await websocket.send_text(json.dumps(reply, separators=(",", ":")))


async def handle_scores(websocket: WebSocket, state: ServerState, sender: Sender, message: dict[str, Any],
                        size: int) -> bool:
    """Store one batch of device scores (a message of ``size`` bytes) as ``POST .../observations`` does; False
    when the stream must close.

    The answer goes out only after the batch's COMMIT (the group writer's), so an acknowledged score is stored.
    """
    batch = message.get("batch")
    batch = batch if isinstance(batch, str) and len(batch) <= 100 else None  # echoed as is
    try:
        # Measured and counted before they are validated: a stream message may be as large as a frame, far
        # larger than an HTTP batch body may be; the HTTP limit holds here too.
        check_batch_bytes(size, state.settings)
        observations = message.get("observations")
        check_batch_size(len(observations) if isinstance(observations, list) else 0, state.settings)
        body = ScoresMessage.model_validate(message)
        check_batch_size(len(body.no_face), state.settings)
        with outage_as_unavailable():
            faces = await record_no_face(state, session_id=sender.session_id, participant_id=sender.participant_id,
                                         samples=[(s.id, s.ts) for s in body.no_face],
                                         other_ts=[o.ts for o in body.observations])
            result = await ingest_batch(state, sender, device_items(body.observations))
    except ValidationError as exc:
        await _send(websocket, scores_error(batch, 422, validation_detail(exc.errors())))
        return True
    except DomainError as exc:
        await _send(websocket, scores_error(batch, exc.status, error_body(exc)["detail"]))
        return exc.status != 409
    accepted = [str(cid) for cid in (*result.inserted, *faces.inserted)]
    duplicates = [str(o.id) for o in body.observations if o.id not in result.inserted] if result.duplicates else []
    duplicates += [str(cid) for cid in faces.duplicates]
    await _send(websocket, {"type": "scores_ack", "batch": batch, "accepted": accepted, "duplicates": duplicates})
    return True


async def handle_message(websocket: WebSocket, state: ServerState, sender: Sender, text: str) -> bool:
    """Process one message; return False when the stream must close (session no longer live)."""
    message: dict[str, Any] = {}
    try:
        message = decode(text)
        if message.get("type") == "scores":
            size = utf8_size(text, limit=batch_body_limit(state.settings))
            return await handle_scores(websocket, state, sender, message, size)
        frame = parse_message(message, state.settings.max_frame_bytes)
        with outage_as_unavailable():
            outcome = await ingest_frame(state, sender, frame.image, client_id=frame.client_id, ts=frame.ts,
                                         rate_wait_s=RATE_WAIT_S)
    except DomainError as exc:
        await _send(websocket, error(str(message.get("id", "")), exc))
        return exc.status != 409
    await _send(websocket, ack(frame.raw_id or str(frame.client_id), outcome))
    return True


def _authenticate(state: ServerState, token: str, session_id: int) -> Sender:
    with state.sessions() as db:
        principal = principal_from_token(db, state, token)
        if principal.participant is None:
            raise Forbidden("the stream takes a participant token (from POST /api/join)")
        require_own_session(principal.participant, session_id)
        return sender_of(principal.participant)


async def serve_stream(websocket: WebSocket, state: ServerState, session_id: int, token: str) -> None:
    """Run one student's stream until the student leaves, the session ends or the student's right to send ends."""
    await websocket.accept()
    try:
        with outage_as_unavailable():
            sender = await to_thread.run_sync(_authenticate, state, token, session_id)
    except Unavailable as exc:  # the database is down: the client tries again later
        await _send(websocket, error(None, exc))
        await websocket.close(code=CloseCode.TRY_AGAIN_LATER)
        return
    except (Unauthorized, Forbidden) as exc:
        await _send(websocket, error(None, exc))
        await websocket.close(code=CloseCode.UNAUTHORIZED if exc.status == 401 else CloseCode.FORBIDDEN)
        return
    check_at = time.monotonic() + state.standings.every_s
    while True:
        received = await _receive_until(websocket, check_at)
        if received is None or time.monotonic() >= check_at:
            reason = await standing(state, session_id=session_id, participant_id=sender.participant_id, token=token)
            if reason is not None:
                await _close_for(websocket, reason)
                return
            check_at = time.monotonic() + state.standings.every_s
        if received is None:
            continue
        if received["type"] == "websocket.disconnect":
            return
        text = received.get("text")
        if text is None:
            await _send(websocket, {"type": "error", "id": None, "detail": "send JSON text messages", "status": 400})
            continue
        try:
            if not await handle_message(websocket, state, sender, text):
                await websocket.close(code=CloseCode.SESSION_OVER)
                return
        except WebSocketDisconnect:
            return


async def _receive_until(websocket: WebSocket, deadline: float) -> dict[str, Any] | None:
    """The next message, or ``None`` when none came before ``deadline`` (monotonic); waiting is cancel-safe."""
    try:
        async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
            return dict(await websocket.receive())
    except TimeoutError:
        return None


async def _close_for(websocket: WebSocket, reason: Reason) -> None:
    code, detail = CLOSE_FOR[reason]
    try:
        await _send(websocket, {"type": "error", "id": None, "detail": detail, "status": 409 if code ==
                                CloseCode.SESSION_OVER else 401})
        await websocket.close(code=code)
    except (WebSocketDisconnect, RuntimeError):
        pass  # the student left meanwhile
