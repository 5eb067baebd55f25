"""API shapes of the alerts feature."""

from __future__ import annotations

from pydantic import BaseModel, Field


class AlertOut(BaseModel):
    """One firing of a session's alert rule (also the data of the live channel's ``alert`` event)."""

    id: int
    session_id: int
    since: float = Field(description="when the negative share first reached the threshold in this episode")
    fired_at: float = Field(description="UTC epoch seconds when the rule fired")
    negative_share: float = Field(description="Angry + Disgust + Fear + Sad of the 'now' histogram then")
    threshold: float
    after_s: float
    total: int = Field(description="what the 'now' histogram counted then")
    participants: int
    text: str


class AlertRuleOut(BaseModel):
    """The rule in force for a session: its own settings or the server's defaults."""

    negative_share: float
    after_s: float
