"""HTTP routes of the courses feature."""

from __future__ import annotations

from fastapi import APIRouter, status

from classmood.server.courses import service
from classmood.server.courses.schemas import CourseCreate, CoursePublic
from classmood.server.deps import CurrentUser, SessionDep

router = APIRouter(prefix="/api/courses", tags=["courses"])


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
