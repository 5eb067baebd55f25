"""axe-core in the browser tests: the engine from the axe-playwright-python wheel, run through the DevTools
protocol (``page.evaluate``), so the pages' CSP, which forbids inline scripts, neither blocks nor reports it."""

from __future__ import annotations

from typing import Any

from axe_playwright_python.base import AXE_SCRIPT


def axe_violations(page: Any) -> list[str]:
    """axe-core's violations of the page as it is now: one line per rule, with the first offending nodes."""
    page.evaluate(AXE_SCRIPT)
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']} ({v['impact']}): {v['help']}: " + "; ".join(str(n["target"]) + " " + n["failureSummary"]
                                                                     for n in v["nodes"][:3])
            for v in result["violations"]]
