"""The chart rules of issue 22 §6, run by charts.js itself in Chromium: thin bars are never a full-height 100 %,
empty time is a gap, and time axes stay readable (few horizontal, distinct ticks) at any session length."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.timeout(60)]
CHARTS = ("import('/static/js/charts.js')"
          ".then((c) => ({c, cfg: JSON.parse(document.getElementById('cm-config').textContent)}))")


def _run(page: Any, body: str) -> Any:
    return page.evaluate(f"{CHARTS}.then(({{c, cfg}}) => {{ {body} }})")


@pytest.fixture()
def page(live_server: LiveServer, context_factory) -> Any:
    p = context_factory().new_page()
    p.goto("/login")  # any page with cm-config
    return p


def test_thin_buckets_are_short_and_empty_ones_are_gaps(page: Any) -> None:
    bars = _run(page, """
      const b = (start, label, n) => ({start, total: n, suppressed: false, shares: {[label]: n ? 1 : 0}});
      const traces = c.bucketBars([b(0, 'Happy', 1), b(60, 'Happy', 0), b(120, 'Sad', 200)], 60,
                                  new Map([[0, 1], [120, 5]]));
      return {min: cfg.chart_min_observations,
              bars: traces.filter((t) => t.type === 'bar').map((t) => ({name: t.name, x: t.x, y: t.y,
                thin: Boolean(t.marker.pattern)})),
              text: traces.filter((t) => t.mode === 'text').map((t) => t.text)};""")
    happy = next(t for t in bars["bars"] if t["name"] == "Happy" and t["thin"])
    assert happy["x"] == [30] and happy["y"] == [pytest.approx(1 / bars["min"])]  # 1 observation: 1/min high
    assert all(60 + 30 not in t["x"] for t in bars["bars"])  # the empty minute draws nothing
    sad = next(t for t in bars["bars"] if t["name"] == "Sad" and not t["thin"])
    assert sad["x"] == [150] and sad["y"] == [1]
    assert bars["text"] == [["n=1"]]


@pytest.mark.parametrize("hours", [0.05, 0.5, 1.5, 3, 8])
def test_time_axis_is_readable_at_any_length(page: Any, hours: float) -> None:
    axis = _run(page, f"const lo = 1765000000; return c.timeAxis(lo, lo + {hours} * 3600);")
    assert 1 <= len(axis["tickvals"]) <= 8
    assert axis["tickangle"] == 0
    assert len(set(axis["ticktext"])) == len(axis["ticktext"])  # no two ticks read the same
