"""The session report as a PDF (matplotlib's PdfPages on the Agg canvas: no display, no pyplot state).

Every figure comes from the analytics answers the report page reads (:mod:`classmood.server.analytics.service`,
:mod:`classmood.server.topics.figures`, :mod:`classmood.server.alerts.service`), so an aggregate-only session's
PDF shows released figures only, and a topic with too few students says so. Times are UTC shifted by
``utc_offset_s`` (the caller's zone), written with the offset.

>>> clock(3600.0 * 13 + 65, 0)
'13:01:05'
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from classmood.labels import EMOTION_COLORS, LABELS
from classmood.server.alerts.schemas import AlertOut
from classmood.server.alerts.service import list_alerts
from classmood.server.analytics.schemas import HistogramOut, TimelineOut
from classmood.server.analytics.service import Policy, Window, negative_share, session_histogram, session_timeline
from classmood.server.courses.models import Course
from classmood.server.db import as_utc, epoch_now
from classmood.server.sessions.models import ClassSession
from classmood.server.topics.figures import percent, topic_summary
from classmood.server.topics.schemas import TopicSummaryOut

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.backends.backend_pdf import PdfPages

PAGE = (11.69, 8.27)  # A4 landscape, inches
TIMELINE_BUCKETS = 60  # about this many buckets, whatever the session's length


def clock(ts: float, utc_offset_s: int) -> str:
    """A time of day in the report's zone."""
    return datetime.fromtimestamp(ts + utc_offset_s, UTC).strftime("%H:%M:%S")


def _zone(utc_offset_s: int) -> str:
    return datetime.now(timezone(timedelta(seconds=utc_offset_s))).strftime("UTC%z")


@dataclass(frozen=True)
class ReportData:
    """What the PDF shows, read once."""

    course: str
    session: ClassSession
    whole: HistogramOut
    timeline: TimelineOut
    topics: TopicSummaryOut
    alerts: list[AlertOut]
    utc_offset_s: int


def _bucket_s(session: ClassSession) -> float:
    started, ended = as_utc(session.started_at), as_utc(session.ended_at)
    if started is None:
        return 60.0
    length = (ended.timestamp() if ended else epoch_now()) - started.timestamp()
    return float(max(10, math.ceil(length / TIMELINE_BUCKETS / 10) * 10))


def read_report(db: Session, *, session: ClassSession, policy: Policy, utc_offset_s: int) -> ReportData:
    """Every figure of the report, through the analytics services (their privacy rules included)."""
    course = db.get(Course, session.course_id)
    return ReportData(
        course=course.title if course else "?", session=session,
        whole=session_histogram(db, session=session, window=Window(), policy=policy),
        timeline=session_timeline(db, session=session, window=Window(), bucket_s=_bucket_s(session), policy=policy),
        topics=topic_summary(db, session=session, policy=policy), alerts=list_alerts(db, session=session),
        utc_offset_s=utc_offset_s)


def title_lines(data: ReportData) -> tuple[str, str]:
    """The report's title (course and session) and subtitle (date, students, observations)."""
    started = as_utc(data.session.started_at)
    day = "not started" if started is None else (started + timedelta(seconds=data.utc_offset_s)).strftime("%Y-%m-%d")
    if data.whole.suppressed:
        counts = "too few students to show figures"
    else:
        counts = f"{data.whole.participants} students, {data.whole.total} observations"
    mode = " · aggregate-only: whole released cells only" if data.session.private else ""
    return f"{data.course} — {data.session.title}", f"{day} · {counts}{mode}"


def _summary_text(data: ReportData) -> list[str]:
    share = negative_share(data.whole)
    lines = [f"Negative share (Angry, Disgust, Fear, Sad): {'–' if share is None else percent(share)}"]
    if not data.whole.suppressed and data.whole.total:
        ranked = sorted(data.whole.shares.items(), key=lambda kv: -kv[1])
        lines.append("Shares: " + ", ".join(f"{label} {percent(v)}" for label, v in ranked if v > 0))
    lines += [t.sentence for t in data.topics.topics if t.sentence]
    lines.append(f"Alerts: {len(data.alerts)}" + "".join(
        f"\n  {clock(a.fired_at, data.utc_offset_s)}  {a.text}" for a in data.alerts[:8]))
    return lines


def _topic_rows(data: ReportData) -> list[list[str]]:
    rows = []
    for t in data.topics.topics:
        minutes = f"{t.duration_s / 60:.1f} min"
        if t.too_few_students:
            figures = ["too few students", "", "", ""]
        else:
            figures = [str(t.students), str(t.observations),
                       "–" if t.negative_share is None else percent(t.negative_share),
                       "–" if t.faces_in_view is None else f"{t.faces_in_view} of {t.present}"]
        rows.append([t.title[:40], clock(t.start, data.utc_offset_s), minutes, *figures])
    return rows


def _first_page(pdf: PdfPages, data: ReportData) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=PAGE)
    title, subtitle = title_lines(data)
    fig.text(0.05, 0.93, title, fontsize=20, weight="bold")
    fig.text(0.05, 0.89, subtitle, fontsize=12)
    fig.text(0.05, 0.84, "\n".join(_summary_text(data)), fontsize=10, va="top", wrap=True)
    rows = _topic_rows(data)
    ax = fig.add_axes((0.05, 0.05, 0.9, 0.42))
    ax.set_axis_off()
    ax.set_title(f"Topics (times {_zone(data.utc_offset_s)})", loc="left")
    if rows:
        table = ax.table(cellText=rows, colLabels=["topic", "start", "duration", "students", "observations",
                                                   "negative share", "face in view"], loc="upper left")
        table.auto_set_font_size(False)
        table.set_fontsize(9)
    else:
        ax.text(0, 0.9, "No topics were marked in this session.", fontsize=10)
    pdf.savefig(fig)  # type: ignore[no-untyped-call]


def _timeline_page(pdf: PdfPages, data: ReportData) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=PAGE, layout="constrained")
    ax = fig.add_subplot(2, 1, 1)
    buckets = data.timeline.buckets
    xs = [b.start for b in buckets]
    # Empty or withheld time is a gap, not a 0 % valley.
    ys = [[b.shares.get(label, 0.0) if b.total and not b.suppressed else math.nan for b in buckets]
          for label in LABELS]
    width = data.timeline.bucket_s
    bottom = [0.0] * len(xs)
    for label, values in zip(LABELS, ys, strict=True):
        ax.bar(xs, values, width=width, bottom=bottom, align="edge", color=EMOTION_COLORS[label], label=label)
        bottom = [b + (0.0 if math.isnan(v) else v) for b, v in zip(bottom, values, strict=True)]
    for t in data.topics.topics:
        ax.axvline(t.start, color="black", linewidth=1)
        ax.text(t.start, 1.02, t.title[:24], fontsize=8, rotation=0, va="bottom")
    for a in data.alerts:
        ax.axvline(a.fired_at, color="#c0392b", linestyle="--", linewidth=1)
    ticks = xs[:: max(1, len(xs) // 8)]
    ax.set_xticks(ticks, [clock(x, data.utc_offset_s) for x in ticks])
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of observations")
    ax.set_title(f"Emotions over time ({width:g} s buckets, {_zone(data.utc_offset_s)}; lines: topics, dashed: "
                 "alerts; gaps: no observations)", loc="left", pad=18)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    _histogram(fig.add_subplot(2, 1, 2), data.whole)
    pdf.savefig(fig)  # type: ignore[no-untyped-call]


def _histogram(ax: Axes, whole: HistogramOut) -> None:
    shares = [whole.shares.get(label, 0.0) for label in LABELS]
    ax.bar(list(LABELS), shares, color=[EMOTION_COLORS[label] for label in LABELS])
    ax.set_ylim(0, 1)
    what = ("withheld: too few students" if whole.suppressed
            else f"{whole.total} observations, {whole.participants} students")
    ax.set_title(f"The whole session ({what})", loc="left")


def render_pdf(data: ReportData) -> bytes:
    """The report's PDF bytes: page 1 title, summary, alerts and topic table; page 2 the charts."""
    from matplotlib.backends.backend_pdf import PdfPages

    out = io.BytesIO()
    title, _ = title_lines(data)
    with PdfPages(out, metadata={"Title": title, "Creator": "ClassMood"}) as pdf:
        _first_page(pdf, data)
        _timeline_page(pdf, data)
    return out.getvalue()
