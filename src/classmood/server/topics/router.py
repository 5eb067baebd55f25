"""HTTP routes of the topics feature (the course's teacher, or an admin)."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Response, status
from sqlalchemy.orm import Session

from classmood.server.analytics.router import PolicyDep
from classmood.server.deps import CurrentUser, SessionDep, StateDep
from classmood.server.sessions.models import ClassSession
from classmood.server.sessions.service import get_session
from classmood.server.state import ServerState
from classmood.server.topics import figures, service
from classmood.server.topics.schemas import TopicCreate, TopicOut, TopicPublic, TopicSummaryOut, TopicUpdate

router = APIRouter(prefix="/api/sessions/{session_id}/topics", tags=["topics"])


def _announce(tasks: BackgroundTasks, state: ServerState, db: Session, session: ClassSession) -> None:
    """Tell the session's open dashboards and reports the topics changed (SSE ``topics``: all of them)."""
    spans = [TopicPublic.of(span).model_dump() for span in service.topic_spans(db, session=session)]
    tasks.add_task(state.broker.publish, session.id, "topics", {"topics": spans})


@router.post("", status_code=status.HTTP_201_CREATED)
def create_topic(session_id: int, body: TopicCreate, db: SessionDep, user: CurrentUser, state: StateDep,
                 tasks: BackgroundTasks) -> TopicPublic:
    """Start a lesson topic (``start`` defaults to now and must lie within the session)."""
    session = get_session(db, user=user, session_id=session_id)
    topic = service.create_topic(db, session=session, title=body.title, start=body.start)
    _announce(tasks, state, db, session)
    return TopicPublic.of(topic)


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
def update_topic(session_id: int, topic_id: int, body: TopicUpdate, db: SessionDep, user: CurrentUser,
                 state: StateDep, tasks: BackgroundTasks) -> TopicPublic:
    """Rename a topic or move its start."""
    session = get_session(db, user=user, session_id=session_id)
    topic = service.update_topic(db, session=session, topic_id=topic_id, title=body.title, start=body.start)
    _announce(tasks, state, db, session)
    return TopicPublic.of(topic)


@router.delete("/{topic_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_topic(session_id: int, topic_id: int, db: SessionDep, user: CurrentUser, state: StateDep,
                 tasks: BackgroundTasks) -> Response:
    """Delete a topic (the one before it runs on)."""
    session = get_session(db, user=user, session_id=session_id)
    service.delete_topic(db, session=session, topic_id=topic_id)
    _announce(tasks, state, db, session)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
