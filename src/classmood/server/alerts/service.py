"""The alert rule of a session, evaluated by the server, and its firings.

The rule (the dashboard's, now stored with the session): the negative share (Angry, Disgust, Fear, Sad) of the
"now" histogram, i.e. the last ``live_window_s`` seconds steadied over ``smooth_window_s`` (an aggregate-only
session: the newest released cell), stays at or above ``negative_share`` for at least ``after_s`` seconds;
then it fires once, and again only after the share went below the threshold.

Every server process evaluates every live session (:mod:`.runner`); the database keeps the state, so they
agree: the episode's start is set only where none is set yet, and a firing is a row unique per (session,
episode start), so however many processes see the same episode, one of them fires it.

>>> AlertRule(0.5, 60.0).text(0.625)
'63 % of faces look angry, disgusted, afraid or sad for over 60 s. Maybe check in with the class.'
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from classmood.config import Settings
from classmood.server.alerts.models import AlertEpisode, SessionAlert
from classmood.server.alerts.schemas import AlertOut
from classmood.server.analytics.schemas import HistogramOut
from classmood.server.analytics.service import Policy, Window, negative_share, session_histogram
from classmood.server.analytics.sql import upsert_insert
from classmood.server.sessions.models import ClassSession
from classmood.server.topics.figures import percent


@dataclass(frozen=True)
class AlertRule:
    """Alert when the negative share stays at or above ``negative_share`` for ``after_s`` seconds."""

    negative_share: float
    after_s: float

    def text(self, share: float) -> str:
        """The alert's sentence, as the dashboard wrote it."""
        return (f"{percent(share)} of faces look angry, disgusted, afraid or sad for over "
                f"{round(self.after_s)} s. Maybe check in with the class.")


def rule_of(session: ClassSession, settings: Settings) -> AlertRule:
    """The session's rule: its own settings, or the server's defaults."""
    share = session.alert_negative_share
    after = session.alert_after_s
    return AlertRule(settings.alert_negative_share if share is None else share,
                     settings.alert_after_s if after is None else after)


def now_histogram(db: Session, *, session: ClassSession, settings: Settings, policy: Policy,
                  now: float) -> HistogramOut:
    """The dashboard's "now" histogram: the last live_window_s seconds (aggregate-only: the newest sealed cell)."""
    span = policy.cell_s + policy.seal_s if session.private else settings.live_window_s
    smooth = settings.smooth_window_s if settings.smooth_window_s > 0 else None
    return session_histogram(db, session=session, window=Window(since=now - span), policy=policy, smooth_s=smooth)


def _episode_start(db: Session, session_id: int, now: float) -> float:
    """Since when the share has been high: set now unless an episode is already running (any process's)."""
    db.execute(upsert_insert(db, AlertEpisode).on_conflict_do_nothing(),
               {"session_id": session_id, "high_since": now})
    db.execute(update(AlertEpisode).where(AlertEpisode.session_id == session_id, AlertEpisode.high_since.is_(None))
               .values(high_since=now))
    since = db.scalar(select(AlertEpisode.high_since).where(AlertEpisode.session_id == session_id))
    return now if since is None else float(since)


def evaluate(db: Session, *, session: ClassSession, settings: Settings, policy: Policy, now: float) -> AlertOut | None:
    """Evaluate the session's rule at ``now``; the new alert when it fires (stored), else ``None``. Commits."""
    rule = rule_of(session, settings)
    histogram = now_histogram(db, session=session, settings=settings, policy=policy, now=now)
    share = negative_share(histogram)
    if share is None or share < rule.negative_share:
        # Read first: a calm class (the usual case) costs every round a read, not a write transaction.
        if db.scalar(select(AlertEpisode.high_since).where(AlertEpisode.session_id == session.id)) is not None:
            db.execute(update(AlertEpisode).where(AlertEpisode.session_id == session.id).values(high_since=None))
            db.commit()
        return None
    since = _episode_start(db, session.id, now)
    fired = None
    if now - since >= rule.after_s:
        alert = AlertOut(id=0, session_id=session.id, since=since, fired_at=now, negative_share=share,
                         threshold=rule.negative_share, after_s=rule.after_s, total=histogram.total,
                         participants=histogram.participants, text=rule.text(share))
        row = alert.model_dump(exclude={"id", "text"})
        new_id = db.execute(upsert_insert(db, SessionAlert).on_conflict_do_nothing().returning(SessionAlert.id),
                            row).scalar()
        if new_id is not None:
            fired = alert.model_copy(update={"id": int(new_id)})
    db.commit()
    return fired


def live_sessions(db: Session) -> list[ClassSession]:
    """The sessions whose rule is evaluated: the live ones."""
    return list(db.scalars(select(ClassSession).where(ClassSession.status == "live").order_by(ClassSession.id)))


def list_alerts(db: Session, *, session: ClassSession) -> list[AlertOut]:
    """The session's alerts, oldest first."""
    rows = db.scalars(select(SessionAlert).where(SessionAlert.session_id == session.id)
                      .order_by(SessionAlert.fired_at, SessionAlert.id))
    return [AlertOut(id=a.id, session_id=a.session_id, since=a.since, fired_at=a.fired_at,
                     negative_share=a.negative_share, threshold=a.threshold, after_s=a.after_s, total=a.total,
                     participants=a.participants,
                     text=AlertRule(a.threshold, a.after_s).text(a.negative_share)) for a in rows]
