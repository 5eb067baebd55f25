"""API shapes of the observations feature."""

from __future__ import annotations

import math
import uuid
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from classmood.labels import LABELS
from classmood.server.validation import InputModel

PROB_SUM_TOLERANCE = 0.05  # device scores arrive rounded; a vector further from 1 is a client bug


def check_probs(value: dict[str, float]) -> dict[str, float]:
    """Exactly the seven emotions, each a finite number in [0, 1], summing to about 1.

    >>> check_probs(dict.fromkeys(LABELS, 1 / 7))["Happy"] > 0
    True
    """
    if set(value) != set(LABELS):
        raise ValueError(f"probs must have exactly the keys {', '.join(LABELS)}")
    if not all(math.isfinite(p) and 0.0 <= p <= 1.0 for p in value.values()):
        raise ValueError("probabilities must be numbers between 0 and 1")
    if abs(sum(value.values()) - 1.0) > PROB_SUM_TOLERANCE:
        raise ValueError("probabilities must sum to 1")
    return value


class _TypedBatch(InputModel):
    """A device batch, or one of its observations: validated without InputModel's walk over every value.

    The walk finds text no database can store and non-finite numbers anywhere in a body; on this hot path,
    thousands of times a second, it was 40 % of the validation, and nothing of a batch is stored as free
    text: its numbers are refused unless finite (``allow_inf_nan=False``), its ids are uuids, its
    probabilities' keys must be exactly the seven labels, unknown keys are dropped, and the stream's
    ``batch`` name is only echoed back (as ASCII JSON).
    """

    walk_values = False


class ObservationIn(_TypedBatch):
    """One score computed on the student's device; ``id`` makes retries idempotent."""

    id: uuid.UUID
    ts: float = Field(description="UTC epoch seconds when the face was seen, within the session's live window")
    probs: dict[str, float]
    score: float | None = Field(None, ge=0.0, le=1.0, description="face detection score, if known")

    _probs = field_validator("probs")(check_probs)


class NoFaceIn(_TypedBatch):
    """A sample in which the device saw no face: no probabilities, only its id (idempotency) and time."""

    id: uuid.UUID
    ts: float = Field(description="UTC epoch seconds of the sample, within the session's live window")


class BatchIn(_TypedBatch):
    """A batch of device-computed observations (and, optionally, samples without a face)."""

    observations: list[ObservationIn]
    no_face: list[NoFaceIn] = Field(default_factory=list, description="samples in which no face was in view")


class ScoresMessage(BatchIn):
    """A batch of device-computed observations on the student stream (same rules as :class:`BatchIn`).

    ``batch`` is the client's name for this message, echoed in its answer so that the page knows which of
    its queued scores the answer is about.
    """

    type: Literal["scores"]
    batch: str | None = Field(None, max_length=100)


class BatchOut(BaseModel):
    """How many observations of a batch were stored and how many were already there."""

    accepted: int
    duplicates: int = Field(description="observations and no-face samples already stored before")
    no_face: int = Field(default=0, description="no-face samples newly stored")


class FaceOut(BaseModel):
    """One face found in a frame and stored as an observation."""

    id: int
    client_id: uuid.UUID
    label: str
    probs: dict[str, float]
    score: float
    box: list[float]


class FrameOut(BaseModel):
    """Answer to a frame: the observations stored (one per face)."""

    observations: list[FaceOut]
    faces: int
    duplicate: bool = False
    shed: bool = Field(False, description="not analysed (server overloaded: a newer frame of yours came, or it "
                                          "waited too long); nothing was stored, do not send it again")


class OwnObservation(BaseModel):
    """An observation as its participant sees it."""

    id: int
    client_id: uuid.UUID
    ts: float
    label: str
    probs: dict[str, float]
    score: float | None
    source: str


def own_list(rows: list[Any]) -> dict[str, Any]:
    """The participant's observations as ``{observations: [...], count}``."""
    items = [OwnObservation(id=o.id, client_id=o.client_id, ts=o.ts, label=o.label_name, probs=o.probs,
                            score=o.score, source=o.source).model_dump(mode="json") for o in rows]
    return {"observations": items, "count": len(items)}
