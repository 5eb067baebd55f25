"""API shapes of the analytics feature: what every analytics route answers (and ``/docs`` shows)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from classmood.labels import LABELS
from classmood.server.analytics.queries import Bucket, Counts, ParticipantSummary


class HistogramOut(BaseModel):
    """Observations per emotion; ``counts`` and ``shares`` are empty (and ``total`` 0) when suppressed."""

    counts: dict[str, int] = Field(description="observations per emotion, all seven")
    shares: dict[str, float] = Field(description="each emotion's share of total")
    total: int
    participants: int = Field(description="distinct participants behind the counts")
    suppressed: bool = Field(description="aggregate-only and fewer participants than the minimum group size")

    @classmethod
    def of(cls, counts: Counts, *, suppressed: bool) -> HistogramOut:
        """The answer for ``counts``, withheld when ``suppressed``."""
        if suppressed:
            return cls(counts={}, shares={}, total=0, participants=counts.participants, suppressed=True)
        return cls(counts=counts.counts, shares=counts.shares(), total=counts.total,
                   participants=counts.participants, suppressed=False)


class BucketOut(BaseModel):
    """One timeline bucket (its counts are withheld when suppressed)."""

    start: float = Field(description="UTC epoch seconds where the bucket begins")
    counts: dict[str, int]
    shares: dict[str, float]
    total: int
    participants: int = Field(default=0, description="distinct students behind the counts (aggregate-only: the "
                                                     "largest head count of its released cells)")
    suppressed: bool

    @classmethod
    def of(cls, bucket: Bucket, *, suppressed: bool) -> BucketOut:
        """The answer for one bucket."""
        shown = HistogramOut.of(bucket.counts, suppressed=suppressed)
        return cls(start=bucket.start, **shown.model_dump())


class TimelineOut(BaseModel):
    """Counts per time bucket, empty buckets included."""

    bucket_s: float
    buckets: list[BucketOut]


class ParticipantOut(BaseModel):
    """One row of the per-participant table."""

    participant_id: int
    display_name: str
    observations: int
    last_ts: float | None
    last_label: str | None = Field(description="top emotion of the newest observation, raw")
    now_label: str | None = Field(description="top emotion of now_probs")
    now_probs: dict[str, float] | None = Field(
        description="mean probabilities over the CLASSMOOD_SMOOTH_WINDOW_S seconds up to the newest observation")
    counts: dict[str, int]
    shares: dict[str, float]

    @classmethod
    def of(cls, summary: ParticipantSummary) -> ParticipantOut:
        """The row of one participant."""
        now = None if summary.now_probs is None else dict(zip(LABELS, summary.now_probs, strict=True))
        return cls(participant_id=summary.participant_id, display_name=summary.display_name,
                   observations=summary.counts.total, last_ts=summary.last_ts, last_label=summary.last_label,
                   now_label=summary.now_label, now_probs=now, counts=summary.counts.counts,
                   shares=summary.counts.shares())


class CourseRow(HistogramOut):
    """A course in the platform overview."""

    course_id: int
    title: str
    teacher_id: int
    teacher: str


class TeacherRow(HistogramOut):
    """A teacher in the platform overview."""

    teacher_id: int
    name: str


class HourRow(HistogramOut):
    """An hour of the day in the platform overview."""

    hour: int


class OverviewOut(BaseModel):
    """The platform view: figures per course, per teacher and per hour of the day."""

    courses: list[CourseRow]
    teachers: list[TeacherRow]
    hours: list[HourRow]
    labels: list[str]
