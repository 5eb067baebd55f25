"""The live dashboard's student tiles show each student's steadied reading, not the raw label of the last frame."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from classmood.benchmarks.servers import tls
from classmood.labels import LABELS

from .conftest import LiveServer, Teacher
from .flows import api_session, sign_in_at
from .test_browser_dashboard import _participant

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


def _send(live: LiveServer, joined: dict[str, Any], items: list[tuple[float, str]]) -> None:
    """Scores computed on a device: one observation per (ts, label), all probability on that label."""
    batch = [{"id": str(uuid.uuid4()), "ts": ts, "probs": {name: float(name == label) for name in LABELS}}
             for ts, label in items]
    r = httpx.post(f"{live.url}/api/sessions/{joined['session_id']}/observations", json={"observations": batch},
                   headers={"Authorization": f"Bearer {joined['token']}"}, timeout=30, verify=tls())
    assert r.raise_for_status().json()["accepted"] == len(items)


def test_tile_shows_the_smoothed_label(live_server: LiveServer, teacher: Teacher, context_factory) -> None:
    session = api_session(live_server, teacher, title="Steady")
    page = context_factory().new_page()
    sign_in_at(page, teacher, f"/teacher/sessions/{session['id']}")
    expect(page.locator("#conn")).to_have_text("live updates")
    assert page.evaluate("JSON.parse(document.getElementById('cm-config').textContent).smooth_window_s") == 3
    joined = _participant(live_server, session, "Jo")
    tile = page.locator(".tile", has_text="Jo")
    base = time.time()
    _send(live_server, joined, [(base - 1.0, "Happy"), (base - 0.5, "Happy")])
    expect(tile.locator(".state")).to_have_text("Happy")
    # One Sad frame: the raw last label turns Sad, but two Happy of three readings in 3 s keep the tile Happy,
    # also once the dashboard has read the participants after it.
    _send(live_server, joined, [(base, "Sad")])
    deadline = time.monotonic() + 20
    while True:
        with page.expect_response(lambda r: f"/api/sessions/{session['id']}/participants" in r.url) as answer:
            pass
        [row] = answer.value.json()
        if row["last_label"] == "Sad":
            break
        assert time.monotonic() < deadline, "the dashboard never read the participants after the Sad frame"
    assert row["now_label"] == "Happy"
    expect(tile.locator(".state")).to_have_text("Happy")
    assert tile.get_attribute("data-label") == "Happy"
    # Two more Sad frames outweigh the Happy ones: the tile follows.
    _send(live_server, joined, [(base + 0.5, "Sad"), (base + 1.0, "Sad")])
    expect(tile.locator(".state")).to_have_text("Sad")
