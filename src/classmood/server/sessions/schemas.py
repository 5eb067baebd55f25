"""API shapes of the sessions feature: class sessions and joining."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from classmood.server.db import as_utc
from classmood.server.sessions.models import ClassSession, Participant
from classmood.server.validation import InputModel, Title

AnalysisMode = Literal["device", "server"]


class SessionCreate(InputModel):
    """A new class session of a course."""

    title: Title
    scheduled_at: datetime | None = None
    aggregate_only: bool | None = Field(None, description="default: the server's CLASSMOOD_AGGREGATE_ONLY")
    show_self_to_students: bool = True
    frame_interval_s: float | None = Field(None, gt=0.1, le=60)
    analysis_mode: AnalysisMode | None = Field(None, description="default: the server's CLASSMOOD_ANALYSIS_MODE")
    allow_server_fallback: bool | None = Field(
        None, description="device mode: a browser that cannot run the model may send frames to the server instead")


class SessionUpdate(InputModel):
    """Changeable settings of a session."""

    title: Title | None = None
    show_self_to_students: bool | None = None
    aggregate_only: bool | None = None
    frame_interval_s: float | None = Field(None, gt=0.1, le=60)
    analysis_mode: AnalysisMode | None = None
    allow_server_fallback: bool | None = None
    alert_negative_share: float | None = Field(
        default=None, ge=0, le=1, description="alert at this negative share ...; null: the server's default")
    alert_after_s: float | None = Field(default=None, ge=0, le=86_400,
                                        description="... held this long (seconds); null: the server's default")


class AlertRulePublic(BaseModel):
    """The alert rule in force: the session's own settings, or the server's defaults."""

    negative_share: float
    after_s: float


class SessionPublic(BaseModel):
    """A class session as teachers see it."""

    id: int
    course_id: int
    title: str
    code: str
    status: Literal["scheduled", "live", "ended"]
    scheduled_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    join_url: str
    aggregate_only: bool
    show_self_to_students: bool
    frame_interval_s: float
    analysis_mode: AnalysisMode
    allow_server_fallback: bool
    alert_negative_share: float | None = Field(default=None, description="the session's own rule (null: default)")
    alert_after_s: float | None = None
    alert_rule: AlertRulePublic | None = Field(default=None, description="the rule in force")

    @classmethod
    def of(cls, session: ClassSession, public_url: str = "", rule: tuple[float, float] | None = None) -> SessionPublic:
        """Build from a row; ``join_url`` is absolute when the server knows its public URL."""
        return cls(id=session.id, course_id=session.course_id, title=session.title, code=session.code,
                   status=session.status,  # type: ignore[arg-type]
                   scheduled_at=as_utc(session.scheduled_at), started_at=as_utc(session.started_at),
                   ended_at=as_utc(session.ended_at), join_url=f"{public_url.rstrip('/')}/join/{session.code}",
                   aggregate_only=session.aggregate_only, show_self_to_students=session.show_self_to_students,
                   frame_interval_s=session.frame_interval_s,
                   analysis_mode=session.analysis_mode,  # type: ignore[arg-type]
                   allow_server_fallback=session.allow_server_fallback,
                   alert_negative_share=session.alert_negative_share, alert_after_s=session.alert_after_s,
                   alert_rule=None if rule is None else AlertRulePublic(negative_share=rule[0], after_s=rule[1]))


class JoinInfo(BaseModel):
    """What a student sees before joining (public)."""

    session_id: int
    title: str
    course_title: str
    teacher_name: str
    status: str
    frame_interval_s: float
    show_self_to_students: bool
    aggregate_only: bool
    analysis_mode: AnalysisMode
    allow_server_fallback: bool


class JoinIn(InputModel):
    """A student joins with the code, a display name and explicit consent."""

    code: str = Field(min_length=1, max_length=16)
    display_name: str = Field(min_length=1, max_length=80)
    consent: bool

    @field_validator("consent")
    @classmethod
    def _consent_given(cls, value: bool) -> bool:
        if value is not True:
            raise ValueError("consent must be true: nothing is measured without the student's consent")
        return value

    @field_validator("display_name")
    @classmethod
    def _name(cls, value: str) -> str:
        name = " ".join(value.split())
        if not name:
            raise ValueError("display_name must not be blank")
        return name


class JoinOut(BaseModel):
    """The participant created by joining, and its token (scoped to this session)."""

    participant_id: int
    session_id: int
    display_name: str
    token: str


def participant_public(participant: Participant) -> dict[str, Any]:
    """A participant as the participant itself sees it."""
    return {"id": participant.id, "participant_id": participant.id, "session_id": participant.session_id,
            "display_name": participant.display_name, "joined_at": as_utc(participant.joined_at)}
