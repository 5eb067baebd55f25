"""Schemathesis against the real app: no 5xx, and every answer as the OpenAPI document says.

Every operation is fuzzed as the admin, a teacher and a student, on SQLite and on PostgreSQL, with
valid and invalid requests. The run is bounded: ``CLASSMOOD_FUZZ_EXAMPLES`` examples per operation and
``CLASSMOOD_FUZZ_SECONDS`` seconds per role and database. The defaults are the test suite's short run (1.5 s
each: every operation still gets its examples, see ``MIN_SHARE_S``; about 15 s for the six runs with their setup);
``make fuzz`` runs the long version. Each run prints its
requests and its 5xx answers (there must be none).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .conftest import World  # noqa: E402

EXAMPLES = int(os.environ.get("CLASSMOOD_FUZZ_EXAMPLES", "30"))
SECONDS = float(os.environ.get("CLASSMOOD_FUZZ_SECONDS", "1.5"))
MIN_SHARE_S = 0.05  # every operation gets at least this long, however short the budget
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
# The live event stream never ends by itself; it is covered by tests/server/test_live.py.
SKIP = {("GET", "/api/sessions/{session_id}/live")}


@dataclass
class Tally:
    """What one run sent and what went wrong."""

    calls: int = 0
    server_errors: int = 0
    failures: list[str] = field(default_factory=list)
    example_s: float = 0.05  # what one generated example costs here (measured as the run goes)

    def examples_for(self, share_s: float) -> int:
        """As many examples as fit in ``share_s`` (generating one costs time even when it is skipped)."""
        return max(2, min(EXAMPLES, round(share_s / self.example_s)))


def _fuzz_operation(operation: Any, headers: dict[str, str], share_s: float, tally: Tally) -> None:
    strategy = st.one_of(operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
                         operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    started, until, examples = time.monotonic(), time.monotonic() + share_s, tally.examples_for(share_s)
    calls = tally.calls

    @given(case=strategy)
    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        # The operation's first request is always sent, even past its share: on a busy machine a short budget
        # could otherwise run out before some operations were called at all.
        if (tally.calls > calls and time.monotonic() > until) or len(tally.failures) > 20:
            return
        tally.calls += 1
        try:
            response = case.call(headers=headers)
            tally.server_errors += response.status_code >= 500
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (Exception, BaseExceptionGroup) as exc:  # collect every failure, then report them all
            tally.failures.append(f"{operation.label}: {str(exc)[:1500]}")

    run()
    tally.example_s = 0.7 * tally.example_s + 0.3 * (time.monotonic() - started) / max(1, tally.calls - calls)


@pytest.mark.slow
@pytest.mark.parametrize("role", ["admin", "teacher_a", "student"])
def test_no_server_errors_and_answers_conform_to_the_schema(world: World, role: str) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", world.client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    operations = [op for op in operations if (op.method.upper(), op.path) not in SKIP]
    assert len(operations) >= 20
    headers = getattr(world, role)
    tally = Tally()
    started = time.monotonic()
    for index, operation in enumerate(operations):
        # an equal share of what is left of the time budget for each remaining operation
        share = (SECONDS - (time.monotonic() - started)) / (len(operations) - index)
        _fuzz_operation(operation, headers, max(share, MIN_SHARE_S), tally)
    print(f"{role}: {tally.calls} requests over {len(operations)} operations in {time.monotonic() - started:.0f} s, "
          f"{tally.server_errors} answered 5xx")
    assert tally.server_errors == 0 and not tally.failures, "\n\n".join(tally.failures)
    assert tally.calls >= len(operations)
