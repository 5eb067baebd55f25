"""The server's alert loop: every ``alert_check_s`` seconds, each live session's rule, in every process.

It runs with or without a dashboard open; a firing is stored (once, whichever process sees it first: see
:mod:`.service`) and sent to the session's live channel as an ``alert`` event.
"""

from __future__ import annotations

import asyncio
import logging

from anyio import to_thread

from classmood.server.alerts.schemas import AlertOut
from classmood.server.alerts.service import evaluate, live_sessions
from classmood.server.analytics.service import Policy
from classmood.server.db import epoch_now
from classmood.server.state import ServerState

log = logging.getLogger(__name__)


def policy_of(state: ServerState) -> Policy:
    """The aggregate-only policy of the server's settings."""
    s = state.settings
    return Policy(min_faces=s.min_faces, cell_s=s.private_cell_s, seal_s=s.private_seal_s)


def check_all(state: ServerState) -> list[AlertOut]:
    """Evaluate every live session's rule now; the alerts that fired."""
    fired = []
    with state.sessions() as db:
        for session in live_sessions(db):
            try:
                alert = evaluate(db, session=session, settings=state.settings, policy=policy_of(state),
                                 now=epoch_now())
            except Exception:  # one session's failure must not stop the others' alerts
                db.rollback()
                log.exception("alert rule of session %s not evaluated", session.id)
                continue
            if alert is not None:
                fired.append(alert)
    return fired


async def run_alerts(state: ServerState) -> None:
    """Evaluate the rules every ``alert_check_s`` seconds until cancelled, publishing what fires."""
    while True:
        await asyncio.sleep(state.settings.alert_check_s)  # first round after one period: startup stays light
        try:
            for alert in await to_thread.run_sync(check_all, state):
                await state.broker.publish(alert.session_id, "alert", alert.model_dump())
        except Exception:  # e.g. the database is away for a moment: try again next round
            log.exception("alert round failed")
