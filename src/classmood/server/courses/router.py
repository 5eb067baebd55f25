"""HTTP routes of the courses feature."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from classmood.server.analytics.router import PolicyDep
from classmood.server.courses import service, trends
from classmood.server.courses.schemas import CourseCreate, CoursePublic, CourseTrendOut, PlatformTrendOut
from classmood.server.db import utcnow
from classmood.server.deps import CurrentAdmin, CurrentUser, SessionDep

router = APIRouter(prefix="/api/courses", tags=["courses"])
platform_router = APIRouter(prefix="/api/platform", tags=["courses"])


@router.get("")
def list_courses(db: SessionDep, user: CurrentUser) -> list[CoursePublic]:
    """Your courses (all courses for an admin)."""
    return [CoursePublic.model_validate(c) for c in service.list_courses(db, user=user)]


@router.post("", status_code=status.HTTP_201_CREATED)
def create_course(body: CourseCreate, db: SessionDep, user: CurrentUser) -> CoursePublic:
    """Create a course that you teach."""
    return CoursePublic.model_validate(service.create_course(db, teacher=user, title=body.title))


@router.get("/{course_id}")
def get_course(course_id: int, db: SessionDep, user: CurrentUser) -> CoursePublic:
    """One of your courses."""
    return CoursePublic.model_validate(service.get_course(db, user=user, course_id=course_id))


@router.get("/{course_id}/trend")
def course_trend(course_id: int, db: SessionDep, user: CurrentUser, rules: PolicyDep) -> CourseTrendOut:
    """The course's sessions, oldest first: participants, totals, shares, negative share and topics."""
    return trends.course_trend(db, user=user, course_id=course_id, policy=rules)


@platform_router.get("/trend")
def platform_trend(db: SessionDep, _admin: CurrentAdmin, rules: PolicyDep,
                   weeks: Annotated[int, Query(ge=1, le=520)] = 12) -> PlatformTrendOut:
    """Each course's figures per ISO week of its sessions' start, the last ``weeks`` weeks (admins)."""
    return trends.platform_trend(db, weeks=weeks, now=utcnow(), policy=rules)
