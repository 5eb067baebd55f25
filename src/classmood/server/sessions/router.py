"""HTTP routes of the sessions feature: class sessions of a course, their life cycle, joining."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, status

from classmood.config import Settings
from classmood.server.alerts.service import rule_of
from classmood.server.courses.service import get_course
from classmood.server.deps import CurrentUser, SessionDep, StateDep
from classmood.server.sessions import service
from classmood.server.sessions.models import ClassSession
from classmood.server.sessions.schemas import JoinIn, JoinInfo, JoinOut, SessionCreate, SessionPublic, SessionUpdate

router = APIRouter(prefix="/api", tags=["sessions"])


def _public(session: ClassSession, settings: Settings) -> SessionPublic:
    rule = rule_of(session, settings)
    return SessionPublic.of(session, settings.public_url, rule=(rule.negative_share, rule.after_s))


@router.get("/courses/{course_id}/sessions")
def list_sessions(course_id: int, db: SessionDep, user: CurrentUser, state: StateDep) -> list[SessionPublic]:
    """The sessions of one of your courses."""
    course = get_course(db, user=user, course_id=course_id)
    return [_public(s, state.settings) for s in service.list_sessions(db, course=course)]


@router.post("/courses/{course_id}/sessions", status_code=status.HTTP_201_CREATED)
def create_session(course_id: int, body: SessionCreate, db: SessionDep, user: CurrentUser,
                   state: StateDep) -> SessionPublic:
    """Schedule a class session (students join it with its code)."""
    course = get_course(db, user=user, course_id=course_id)
    settings = state.settings
    aggregate = settings.aggregate_only if body.aggregate_only is None else body.aggregate_only
    session = service.create_session(
        db, course=course, title=body.title, aggregate_only=aggregate, scheduled_at=body.scheduled_at,
        show_self_to_students=body.show_self_to_students,
        frame_interval_s=body.frame_interval_s or settings.frame_interval_s,
        analysis_mode=body.analysis_mode or settings.analysis_mode,
        allow_server_fallback=(settings.allow_server_fallback if body.allow_server_fallback is None
                               else body.allow_server_fallback))
    return _public(session, settings)


@router.get("/sessions/{session_id}")
def get_session(session_id: int, db: SessionDep, user: CurrentUser, state: StateDep) -> SessionPublic:
    """One session of your courses."""
    return _public(service.get_session(db, user=user, session_id=session_id), state.settings)


@router.patch("/sessions/{session_id}")
def update_session(session_id: int, body: SessionUpdate, db: SessionDep, user: CurrentUser,
                   state: StateDep) -> SessionPublic:
    """Change a session's title, privacy mode, analysis mode (device or server), alert rule or whether students see
    their own emotions."""
    session = service.get_session(db, user=user, session_id=session_id)
    session = service.update_session(db, session=session, changes=body.model_dump(exclude_unset=True))
    return _public(session, state.settings)


@router.post("/sessions/{session_id}/start")
def start_session(session_id: int, db: SessionDep, user: CurrentUser, state: StateDep,
                  tasks: BackgroundTasks) -> SessionPublic:
    """Go live: students' frames are accepted from now on."""
    session = service.start_session(db, session=service.get_session(db, user=user, session_id=session_id))
    tasks.add_task(state.broker.publish, session.id, "status", {"status": session.status})
    return _public(session, state.settings)


@router.post("/sessions/{session_id}/end")
def end_session(session_id: int, db: SessionDep, user: CurrentUser, state: StateDep,
                tasks: BackgroundTasks) -> SessionPublic:
    """End the session: no more joining or frames."""
    session = service.end_session(db, session=service.get_session(db, user=user, session_id=session_id))
    tasks.add_task(state.broker.publish, session.id, "status", {"status": session.status})
    return _public(session, state.settings)


@router.get("/join/{code}")
def join_info(code: str, db: SessionDep) -> JoinInfo:
    """What a student sees before joining: the class, its teacher, and how it is measured (public)."""
    session = service.session_by_code(db, code=code)
    course, teacher = service.session_owner(db, session=session)
    return JoinInfo(session_id=session.id, title=session.title, course_title=course.title,
                    teacher_name=teacher.name, status=session.status, frame_interval_s=session.frame_interval_s,
                    show_self_to_students=session.show_self_to_students, aggregate_only=session.private,
                    analysis_mode=session.analysis_mode,  # type: ignore[arg-type]
                    allow_server_fallback=session.allow_server_fallback)


@router.post("/join", status_code=status.HTTP_201_CREATED)
def join(body: JoinIn, db: SessionDep, state: StateDep) -> JoinOut:
    """Join a session with its code, a display name and consent; returns a token for this session only."""
    participant = service.join_session(db, code=body.code, display_name=body.display_name)
    token = state.signer.sign("participant", {"pid": participant.id, "sid": participant.session_id},
                              state.settings.token_ttl_s)
    return JoinOut(participant_id=participant.id, session_id=participant.session_id,
                   display_name=participant.display_name, token=token)
