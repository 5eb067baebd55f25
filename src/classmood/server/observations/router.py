"""HTTP and WebSocket routes of the observations feature (participant tokens); the stream is in :mod:`.stream`."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, WebSocket

from classmood.server.deps import CachedParticipant, CurrentParticipant, SessionDep, StateDep, get_state
from classmood.server.errors import TooLarge
from classmood.server.faces.ingest import record_no_face
from classmood.server.observations import service
from classmood.server.observations.bodies import read_frame
from classmood.server.observations.ingest import (
    FrameOutcome,
    check_batch_size,
    device_items,
    ingest_batch,
    ingest_frame,
)
from classmood.server.observations.limits import batch_body_limit
from classmood.server.observations.schemas import BatchIn, BatchOut, FaceOut, FrameOut, own_list
from classmood.server.observations.stream import sender_of, serve_stream
from classmood.server.sessions.service import require_own_session

router = APIRouter(prefix="/api", tags=["observations"])


def frame_out(outcome: FrameOutcome) -> FrameOut:
    """The HTTP answer for a frame."""
    faces = [FaceOut(id=s.id, client_id=s.client_id, label=s.face.label, probs=s.face.probs_dict(),
                     score=s.face.score, box=list(s.face.box)) for s in outcome.stored]
    return FrameOut(observations=faces, faces=len(faces), duplicate=outcome.duplicate, shed=outcome.shed)


@router.post("/sessions/{session_id}/frames")
async def post_frame(session_id: int, request: Request, participant: CurrentParticipant, state: StateDep,
                     db: SessionDep, client_id: uuid.UUID | None = None, ts: float | None = None) -> FrameOut:
    """Analyse one camera frame (raw JPEG/PNG body or multipart field ``frame``); stores one observation per face."""
    require_own_session(participant, session_id)
    db.close()  # the token is checked: its connection goes back to the pool before ingestion takes its own
    data = await read_frame(request, state.settings.max_frame_bytes)
    outcome = await ingest_frame(state, sender_of(participant), data, client_id=client_id, ts=ts)
    return frame_out(outcome)


async def _batch_cap(request: Request, state: StateDep) -> None:
    limit = batch_body_limit(state.settings)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"batch body exceeds {limit} bytes; send at most {state.settings.batch_max} observations")


@router.post("/sessions/{session_id}/observations", dependencies=[Depends(_batch_cap)])
async def post_observations(session_id: int, body: BatchIn, participant: CachedParticipant,
                            state: StateDep) -> BatchOut:
    """Store scores computed on the student's device; idempotent by each observation's ``id``."""
    require_own_session(participant, session_id)
    check_batch_size(max(len(body.observations), len(body.no_face)), state.settings)
    faces = await record_no_face(state, session_id=session_id, participant_id=participant.id,
                                 samples=[(s.id, s.ts) for s in body.no_face],
                                 other_ts=[o.ts for o in body.observations])
    result = await ingest_batch(state, sender_of(participant), device_items(body.observations))
    return BatchOut(accepted=len(result.inserted), duplicates=result.duplicates + len(faces.duplicates),
                    no_face=len(faces.inserted))


@router.get("/me/observations")
def my_observations(db: SessionDep, participant: CurrentParticipant,
                    limit: int = Query(1000, ge=1, le=100_000)) -> dict[str, Any]:
    """Your own observations (participant token), newest first."""
    return own_list(service.own_observations(db, participant_id=participant.id, limit=limit))


@router.delete("/me/observations")
def delete_my_observations(db: SessionDep, participant: CurrentParticipant) -> dict[str, int]:
    """Delete all your observations (participant token)."""
    return {"deleted": service.delete_own(db, participant_id=participant.id)}


@router.websocket("/sessions/{session_id}/stream")
async def stream(websocket: WebSocket, session_id: int, token: str = "") -> None:
    """Frames ``{"id", "ts", "image"}`` or score batches ``{"type": "scores", ...}``, each answered (see .stream)."""
    await serve_stream(websocket, get_state(websocket), session_id, token)
