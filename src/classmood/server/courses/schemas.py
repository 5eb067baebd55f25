"""API shapes of the courses feature."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from classmood.server.validation import InputModel, Title, UtcDatetime


class CourseCreate(InputModel):
    """A new course of the calling teacher."""

    title: Title


class CoursePublic(BaseModel):
    """A course as the API shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    teacher_id: int
    created_at: UtcDatetime


class TrendTopic(BaseModel):
    """A topic of a session in a course trend (figures withheld when ``too_few_students``)."""

    title: str
    start: float
    end: float | None
    total: int
    shares: dict[str, float]
    negative_share: float | None
    too_few_students: bool


class TrendSession(BaseModel):
    """One session of a course trend."""

    session_id: int
    title: str
    started_at: datetime | None
    ended_at: datetime | None
    participants: int
    total: int
    shares: dict[str, float]
    negative_share: float | None = Field(description="Angry + Disgust + Fear + Sad; null when withheld or empty")
    suppressed: bool
    topics: list[TrendTopic]


class CourseTrendOut(BaseModel):
    """A course's sessions, oldest first."""

    course_id: int
    title: str
    sessions: list[TrendSession]


class WeekFigures(BaseModel):
    """A course's sessions started in one ISO week, added up."""

    week: date = Field(description="the Monday (UTC) of the week")
    sessions: int
    total: int
    shares: dict[str, float]
    negative_share: float | None


class CourseWeeks(BaseModel):
    """One course of the platform trend: its weeks that had sessions."""

    course_id: int
    title: str
    teacher: str
    weeks: list[WeekFigures]


class PlatformTrendOut(BaseModel):
    """Each course's figures per week, and every week of the span."""

    weeks: list[date]
    courses: list[CourseWeeks]
