"""API shapes of the per-student views."""

from __future__ import annotations

from pydantic import BaseModel, Field


class CheckOnRuleOut(BaseModel):
    """The rule of "students to check on" and its thresholds."""

    text: str
    recent_s: float
    min_observations: int
    min_increase: float
    min_recent_share: float


class PeriodOut(BaseModel):
    """A student's observations and negative share in one period."""

    observations: int
    negative_share: float | None = Field(description="Angry + Disgust + Fear + Sad; null without observations")


class StudentRef(BaseModel):
    """A student by id and name."""

    participant_id: int
    display_name: str


class StudentToCheck(StudentRef):
    """A student to check on, with the figures that flagged them."""

    recent: PeriodOut
    earlier: PeriodOut
    increase: float = Field(description="recent negative share minus the earlier one")


class CheckOnOut(BaseModel):
    """The students to check on, the rule, and those without enough data to judge."""

    rule: CheckOnRuleOut
    now: float = Field(description="the end of the recent period: now, or the session's end")
    students: list[StudentToCheck]
    not_enough_data: list[StudentRef]
