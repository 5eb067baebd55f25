"""HTTP and WebSocket routes of the observations feature (participant tokens)."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Depends, Query, Request, WebSocket, WebSocketDisconnect

from classmood.labels import LABELS
from classmood.server.deps import CurrentParticipant, SessionDep, StateDep, get_state, principal_from_token
from classmood.server.errors import DomainError, Forbidden, TooLarge, Unauthorized
from classmood.server.observations import service
from classmood.server.observations.bodies import read_frame
from classmood.server.observations.ingest import FrameOutcome, Sender, ingest_batch, ingest_frame
from classmood.server.observations.schemas import BatchIn, BatchOut, FaceOut, FrameOut, own_list
from classmood.server.observations.service import NewObservation
from classmood.server.sessions.service import require_own_session

router = APIRouter(prefix="/api", tags=["observations"])
WS_RATE_WAIT_S = 5.0
BATCH_ITEM_BYTES = 1024  # generous size of one JSON observation, for the body cap


def sender_of(participant: Any) -> Sender:
    """The ingestion view of a participant row."""
    return Sender(participant.id, participant.session_id, participant.display_name)


def frame_out(outcome: FrameOutcome) -> FrameOut:
    """The HTTP answer for a frame."""
    faces = [FaceOut(id=s.id, client_id=s.client_id, label=s.face.label, probs=s.face.probs_dict(),
                     score=s.face.score, box=list(s.face.box)) for s in outcome.stored]
    return FrameOut(observations=faces, faces=len(faces), duplicate=outcome.duplicate)


@router.post("/sessions/{session_id}/frames")
async def post_frame(session_id: int, request: Request, participant: CurrentParticipant, state: StateDep,
                     client_id: uuid.UUID | None = None, ts: float | None = None) -> FrameOut:
    """Analyse one camera frame (raw JPEG/PNG body or multipart field ``frame``); stores one observation per face."""
    require_own_session(participant, session_id)
    data = await read_frame(request, state.settings.max_frame_bytes)
    outcome = await ingest_frame(state, sender_of(participant), data, client_id=client_id, ts=ts)
    return frame_out(outcome)


async def _batch_cap(request: Request, state: StateDep) -> None:
    limit = state.settings.batch_max * BATCH_ITEM_BYTES + 1024
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"batch body exceeds {limit} bytes; send at most {state.settings.batch_max} observations")


@router.post("/sessions/{session_id}/observations", dependencies=[Depends(_batch_cap)])
async def post_observations(session_id: int, body: BatchIn, participant: CurrentParticipant,
                            state: StateDep) -> BatchOut:
    """Store scores computed on the student's device; idempotent by each observation's ``id``."""
    require_own_session(participant, session_id)
    if len(body.observations) > state.settings.batch_max:
        raise TooLarge(f"{len(body.observations)} observations; send at most {state.settings.batch_max} per batch")
    items = [NewObservation(client_id=o.id, ts=o.ts, probs=tuple(o.probs[label] for label in LABELS),
                            score=o.score, source="device") for o in body.observations]
    result = await ingest_batch(state, sender_of(participant), items)
    return BatchOut(accepted=len(result.inserted), duplicates=result.duplicates)


@router.get("/me/observations")
def my_observations(db: SessionDep, participant: CurrentParticipant,
                    limit: int = Query(1000, ge=1, le=100_000)) -> dict[str, Any]:
    """Your own observations (participant token), newest first."""
    return own_list(service.own_observations(db, participant_id=participant.id, limit=limit))


@router.delete("/me/observations")
def delete_my_observations(db: SessionDep, participant: CurrentParticipant) -> dict[str, int]:
    """Delete all your observations (participant token)."""
    return {"deleted": service.delete_own(db, participant_id=participant.id)}


def _authenticate_ws(state: Any, token: str, session_id: int) -> Sender:
    with state.sessions() as db:
        principal = principal_from_token(db, state, token)
        if principal.participant is None:
            raise Forbidden("the stream takes a participant token (from POST /api/join)")
        require_own_session(principal.participant, session_id)
        return sender_of(principal.participant)


def parse_message(text: str, max_bytes: int) -> tuple[str, uuid.UUID, float | None, bytes]:
    """Decode ``{"id", "ts", "image"}``; raise :class:`DomainError` with the id (if readable) as args."""
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
    image = message.get("image")
    if not isinstance(image, str) or not image:
        raise DomainError("image must be a base64 JPEG string")
    if "," in image[:64] and image.startswith("data:"):
        image = image.split(",", 1)[1]  # tolerate data URLs from canvas.toDataURL
    if len(image) * 3 // 4 > max_bytes:
        raise TooLarge(f"frame exceeds the limit of {max_bytes} bytes")
    try:
        data = base64.b64decode(image, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DomainError("image is not valid base64") from exc
    return raw_id, client_id, float(ts) if ts is not None else None, data


def ack(raw_id: str, outcome: FrameOutcome) -> dict[str, Any]:
    """The acknowledgement of a frame on the stream."""
    reply: dict[str, Any] = {"type": "ack", "id": raw_id, "faces": len(outcome.stored),
                             "duplicate": outcome.duplicate}
    if outcome.stored and outcome.meta.show_self:
        face = outcome.stored[0].face
        reply.update(label=face.label, probs=face.probs_dict())
    return reply


async def _handle_message(websocket: WebSocket, state: Any, sender: Sender, text: str) -> bool:
    """Process one message; return False when the stream must close (session no longer live)."""
    raw_id = ""
    try:
        raw_id, client_id, ts, data = parse_message(text, state.settings.max_frame_bytes)
        if not raw_id:
            raw_id = str(client_id)
        outcome = await ingest_frame(state, sender, data, client_id=client_id, ts=ts, rate_wait_s=WS_RATE_WAIT_S)
    except DomainError as exc:
        if not raw_id:
            raw_id = _id_of(text)
        await websocket.send_json({"type": "error", "id": raw_id, "detail": exc.detail, "status": exc.status})
        return exc.status != 409
    await websocket.send_json(ack(raw_id, outcome))
    return True


def _id_of(text: str) -> str:
    try:
        value = json.loads(text)
        return str(value.get("id", "")) if isinstance(value, dict) else ""
    except ValueError:
        return ""


@router.websocket("/sessions/{session_id}/stream")
async def stream(websocket: WebSocket, session_id: int, token: str = "") -> None:
    """Frames as ``{"id", "ts", "image": base64 JPEG}`` text messages; each is answered with an ack or error."""
    state = get_state(websocket)
    await websocket.accept()
    try:
        sender = await to_thread.run_sync(_authenticate_ws, state, token, session_id)
    except (Unauthorized, Forbidden) as exc:
        await websocket.send_json({"type": "error", "id": None, "detail": exc.detail, "status": exc.status})
        await websocket.close(code=4000 + exc.status)
        return
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is None:
            await websocket.send_json({"type": "error", "id": None, "detail": "send JSON text messages", "status": 400})
            continue
        try:
            if not await _handle_message(websocket, state, sender, text):
                await websocket.close(code=4409)
                return
        except WebSocketDisconnect:
            return
