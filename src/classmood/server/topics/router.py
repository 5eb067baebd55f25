"""HTTP routes of the topics feature (the course's teacher, or an admin)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from classmood.server.analytics.router import PolicyDep
from classmood.server.deps import CurrentUser, SessionDep
from classmood.server.sessions.service import get_session
from classmood.server.topics import figures, service
from classmood.server.topics.schemas import TopicCreate, TopicOut, TopicPublic, TopicSummaryOut, TopicUpdate

router = APIRouter(prefix="/api/sessions/{session_id}/topics", tags=["topics"])


@router.post("", status_code=status.HTTP_201_CREATED)
def create_topic(session_id: int, body: TopicCreate, db: SessionDep, user: CurrentUser) -> TopicPublic:
    """Start a lesson topic (``start`` defaults to now and must lie within the session)."""
    session = get_session(db, user=user, session_id=session_id)
    return TopicPublic.of(service.create_topic(db, session=session, title=body.title, start=body.start))


@router.get("")
def list_topics(session_id: int, db: SessionDep, user: CurrentUser, rules: PolicyDep) -> list[TopicOut]:
    """The session's topics ordered by start, each with the histogram of its time range."""
    session = get_session(db, user=user, session_id=session_id)
    return figures.list_topics(db, session=session, policy=rules)


@router.get("/summary")
def topic_summary(session_id: int, db: SessionDep, user: CurrentUser, rules: PolicyDep) -> TopicSummaryOut:
    """Per topic: duration, students, observations, shares, negative share against the rest, and a sentence."""
    session = get_session(db, user=user, session_id=session_id)
    return figures.topic_summary(db, session=session, policy=rules)


@router.patch("/{topic_id}")
def update_topic(session_id: int, topic_id: int, body: TopicUpdate, db: SessionDep,
                 user: CurrentUser) -> TopicPublic:
    """Rename a topic or move its start."""
    session = get_session(db, user=user, session_id=session_id)
    return TopicPublic.of(service.update_topic(db, session=session, topic_id=topic_id, title=body.title,
                                               start=body.start))


@router.delete("/{topic_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_topic(session_id: int, topic_id: int, db: SessionDep, user: CurrentUser) -> Response:
    """Delete a topic (the one before it runs on)."""
    session = get_session(db, user=user, session_id=session_id)
    service.delete_topic(db, session=session, topic_id=topic_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
