"""Courses: a teacher's own; admins see all."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from classmood.server.accounts.models import User
from classmood.server.courses.models import Course
from classmood.server.errors import Forbidden, NotFound


def create_course(db: Session, *, teacher: User, title: str) -> Course:
    """Create a course owned by ``teacher``."""
    course = Course(teacher_id=teacher.id, title=title.strip())
    db.add(course)
    db.commit()
    return course


def list_courses(db: Session, *, user: User) -> list[Course]:
    """The user's own courses (all courses for an admin), oldest first."""
    query = select(Course).order_by(Course.id)
    if user.role != "admin":
        query = query.where(Course.teacher_id == user.id)
    return list(db.scalars(query))


def can_manage(user: User, course: Course) -> bool:
    """Admins manage every course, teachers their own."""
    return user.role == "admin" or course.teacher_id == user.id


def get_course(db: Session, *, user: User, course_id: int) -> Course:
    """A course the user may see: 404 if unknown, 403 if someone else's."""
    course = db.get(Course, course_id)
    if course is None:
        raise NotFound(f"no course {course_id}")
    if not can_manage(user, course):
        raise Forbidden("this course belongs to another teacher")
    return course
