"""API shapes of the analytics feature."""

from __future__ import annotations

from typing import Any

from classmood.server.analytics.service import Bucket, Counts, Group, ParticipantSummary


def histogram_out(counts: Counts, suppressed: bool) -> dict[str, Any]:
    """``{counts, shares, total, participants, suppressed}``; counts are withheld when suppressed."""
    if suppressed:
        return {"counts": {}, "shares": {}, "total": 0, "participants": counts.participants, "suppressed": True}
    return {"counts": counts.counts, "shares": counts.shares(), "total": counts.total,
            "participants": counts.participants, "suppressed": False}


def bucket_out(bucket: Bucket, suppressed: bool) -> dict[str, Any]:
    """One timeline bucket."""
    out = histogram_out(bucket.counts, suppressed)
    out.pop("participants")
    return {"start": bucket.start, **out}


def participant_out(summary: ParticipantSummary) -> dict[str, Any]:
    """One row of the per-participant table."""
    return {"participant_id": summary.participant_id, "display_name": summary.display_name,
            "observations": summary.counts.total, "last_ts": summary.last_ts, "last_label": summary.last_label,
            "counts": summary.counts.counts, "shares": summary.counts.shares()}


def group_out(group: Group, suppressed: bool, **extra: Any) -> dict[str, Any]:
    """One row of the platform overview."""
    return {**extra, **histogram_out(group.counts, suppressed)}
