"""API shapes of the faces-in-view feature."""

from __future__ import annotations

from pydantic import BaseModel, Field


class PresenceBucket(BaseModel):
    """One time bucket: students present and students with a face in view (``null`` when withheld)."""

    start: float = Field(description="UTC epoch seconds where the bucket begins")
    present: int | None = Field(description="distinct students with any sample (a face or a no-face sample)")
    faces_in_view: int | None = Field(description="distinct students whose camera saw a face")
    suppressed: bool = Field(description="aggregate-only: not sealed yet, or fewer students than the minimum")


class PresenceOut(BaseModel):
    """Students present and faces in view per time bucket, empty buckets included."""

    bucket_s: float
    buckets: list[PresenceBucket]
