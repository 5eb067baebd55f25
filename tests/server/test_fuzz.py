"""Schemathesis against the real app: no 5xx, and every answer as the OpenAPI document says.

Every operation is fuzzed as the admin, a teacher and a student, on SQLite and on PostgreSQL, with
valid and invalid requests. The run is bounded: ``CLASSMOOD_FUZZ_EXAMPLES`` examples per operation and
``CLASSMOOD_FUZZ_SECONDS`` seconds per role and database (defaults keep the whole file near three
minutes on two cores). ``make fuzz`` runs the long version.
"""

from __future__ import annotations

import os
import time
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
SECONDS = float(os.environ.get("CLASSMOOD_FUZZ_SECONDS", "30"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
# The live event stream never ends by itself; it is covered by tests/server/test_live.py.
SKIP = {("GET", "/api/sessions/{session_id}/live")}


def _fuzz_operation(operation: Any, headers: dict[str, str], until: float, failures: list[str]) -> int:
    strategy = st.one_of(operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
                         operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    calls = 0

    @given(case=strategy)
    @settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        nonlocal calls
        if time.monotonic() > until or len(failures) > 20:
            return
        calls += 1
        try:
            case.call_and_validate(headers=headers, checks=CHECKS)
        except (Exception, BaseExceptionGroup) as exc:  # collect every failure, then report them all
            failures.append(f"{operation.label}: {str(exc)[:1500]}")

    run()
    return calls


@pytest.mark.slow
@pytest.mark.parametrize("role", ["admin", "teacher_a", "student"])
def test_no_server_errors_and_answers_conform_to_the_schema(world: World, role: str) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", world.client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    operations = [op for op in operations if (op.method.upper(), op.path) not in SKIP]
    assert len(operations) >= 20
    headers = getattr(world, role)
    failures: list[str] = []
    started = time.monotonic()
    calls = 0
    for index, operation in enumerate(operations):
        # an equal share of what is left of the time budget for each remaining operation
        share = (SECONDS - (time.monotonic() - started)) / (len(operations) - index)
        calls += _fuzz_operation(operation, headers, time.monotonic() + max(share, 0.2), failures)
    print(f"{role}: {calls} requests over {len(operations)} operations in {time.monotonic() - started:.0f} s")
    assert not failures, "\n\n".join(failures)
    assert calls >= len(operations)
