"""API shapes of the topics feature."""

from __future__ import annotations

from pydantic import BaseModel, Field

from classmood.server.analytics.schemas import HistogramOut
from classmood.server.topics.service import TopicSpan
from classmood.server.validation import InputModel, Title


class TopicCreate(InputModel):
    """A new topic: from ``start`` (default now) to the next topic's start or the session's end."""

    title: Title
    start: float | None = Field(default=None, description="UTC epoch seconds within the session; default now")


class TopicUpdate(InputModel):
    """Rename a topic or move its start."""

    title: Title | None = None
    start: float | None = Field(default=None, description="UTC epoch seconds within the session")


class TopicPublic(BaseModel):
    """A topic and its time range (``end`` null while it runs)."""

    id: int
    title: str
    start: float
    end: float | None

    @classmethod
    def of(cls, span: TopicSpan) -> TopicPublic:
        """The answer for a topic span."""
        return cls(id=span.id, title=span.title, start=span.start, end=span.end)


class TopicOut(TopicPublic):
    """A topic with the histogram of its time range (the schema of ``GET /histogram``)."""

    histogram: HistogramOut


class DifferenceRuleOut(BaseModel):
    """When a topic is called out as differing from the rest of the session."""

    text: str
    min_observations: int
    min_difference: float
    z: float


class TopicSummary(TopicPublic):
    """A topic's figures for the report; all ``null`` (and ``too_few_students``) when they are withheld."""

    duration_s: float
    too_few_students: bool = False
    students: int | None = None
    observations: int | None = None
    shares: dict[str, float] = Field(default_factory=dict)
    negative_share: float | None = Field(default=None, description="Angry + Disgust + Fear + Sad")
    rest_negative_share: float | None = Field(default=None, description="the same over the rest of the session")
    differs: bool = False
    sentence: str | None = Field(default=None, description="a plain sentence when it differs clearly from the rest")
    present: int | None = Field(default=None, description="distinct students with any sample (identified sessions)")
    faces_in_view: int | None = Field(default=None, description="distinct students with a face in view (identified)")


class TopicSummaryOut(BaseModel):
    """The report's topic table and the rule of its sentences."""

    rule: DifferenceRuleOut
    topics: list[TopicSummary]
