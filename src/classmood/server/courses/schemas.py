"""API shapes of the courses feature."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class CourseCreate(BaseModel):
    """A new course of the calling teacher."""

    title: str = Field(min_length=1, max_length=200)


class CoursePublic(BaseModel):
    """A course as the API shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    teacher_id: int
    created_at: datetime
