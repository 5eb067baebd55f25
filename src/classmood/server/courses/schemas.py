"""API shapes of the courses feature."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

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
