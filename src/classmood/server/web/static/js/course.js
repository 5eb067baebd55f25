/* One course over time (GET /api/courses/{id}/trend): a row per session, the shares across sessions, and topics
 * with the same title compared across sessions. */
import { api, config, el, epoch, fmtDate, fmtDuration, pct, plainLabel, show, showError, topLabel, whoami }
  from "./common.js";
import { MIN_OBS, chart, sampleText, setExportContext, shareBars } from "./charts.js";

const $ = (id) => document.getElementById(id);
const cid = config.course_id;

function sessionRow(s) {
  const duration = s.ended_at ? fmtDuration(epoch(s.ended_at) - epoch(s.started_at)) : "running";
  const thin = s.suppressed;
  return el("tr", { "data-session-id": s.session_id, class: thin ? "uncertain" : "" },
    el("th", { scope: "row" }, el("a", { href: `/teacher/sessions/${s.session_id}/report` }, s.title)),
    el("td", {}, fmtDate(s.started_at)), el("td", {}, duration),
    el("td", {}, thin ? "too few students" : String(s.participants ?? "–")),
    el("td", {}, thin ? "–" : String(s.total)), el("td", {}, thin ? "–" : pct(s.negative_share)),
    el("td", {}, thin ? "–" : topLabel(s.shares) || "–"),
    el("td", {}, (s.topics || []).map((t) => t.title).join(", ")));
}

function trendChart(sessions) {
  const ids = sessions.map((s) => String(s.session_id));
  const ticktext = sessions.map((s) => `${plainLabel(s.title)}<br>${fmtDate(s.started_at)}<br>` +
    (s.suppressed ? "too few students" : sampleText(s.total, s.participants)));
  const rows = sessions.map((s) => ({ shares: s.shares, total: s.total || 0, students: s.participants,
    tooFew: s.suppressed }));
  const total = sessions.reduce((sum, s) => sum + (s.total || 0), 0);
  return chart("trend-chart", "Shares across sessions", shareBars(ids, rows, false), { barmode: "stack",
    xaxis: { type: "category", tickmode: "array", tickvals: ids, ticktext, automargin: true, tickangle: 0 },
    yaxis: { tickformat: ".0%", range: [0, 1.001] }, legend: { orientation: "h", y: -0.35, traceorder: "normal" },
    margin: { l: 48, r: 12, t: 12, b: 100 } }, { observations: total, students: null });
}

/** Topics whose title (case and spaces aside) comes back in two sessions or more: title -> [{session, topic}]. */
export function recurringTopics(sessions) {
  const byTitle = new Map();
  for (const s of sessions) {
    for (const t of s.topics || []) {
      const key = t.title.trim().toLowerCase();
      if (!byTitle.has(key)) byTitle.set(key, []);
      byTitle.get(key).push({ session: s, topic: t });
    }
  }
  return [...byTitle.values()].filter((list) => new Set(list.map((x) => x.session.session_id)).size > 1);
}

function sameTopics(sessions) {
  const groups = recurringTopics(sessions);
  show($("same-none"), groups.length === 0);
  show($("same-chart"), groups.length > 0);
  const rows = [];
  for (const list of groups) {
    for (const { session, topic } of list) {
      const thin = topic.too_few_students;
      rows.push(el("tr", { class: thin ? "uncertain" : "" }, el("th", { scope: "row" }, topic.title),
        el("td", {}, session.title), el("td", {}, fmtDate(session.started_at)),
        el("td", {}, thin ? "too few students" : String(topic.total)),
        el("td", {}, thin ? "–" : pct(topic.negative_share))));
    }
  }
  $("same-table").querySelector("tbody").replaceChildren(...rows);
  if (!groups.length) return null;
  const traces = groups.map((list) => ({ type: "scatter", mode: "lines+markers", name: plainLabel(list[0].topic.title),
    x: list.map((x) => String(x.session.session_id)), connectgaps: false,
    y: list.map((x) => (x.topic.too_few_students ? null : x.topic.negative_share)),
    // a thin topic is a hollow marker: a point of few observations is not a figure to compare
    marker: { size: 10, symbol: list.map((x) => ((x.topic.total || 0) < MIN_OBS ? "circle-open" : "circle")) },
    customdata: list.map((x) => `${plainLabel(x.session.title)}: ` +
      (x.topic.too_few_students ? "too few students" : sampleText(x.topic.total))),
    hovertemplate: "%{customdata} · negative share %{y:.0%}<extra></extra>" }));
  const ids = sessions.map((s) => String(s.session_id));
  return chart("same-chart", "The same topic across sessions", traces, {
    xaxis: { type: "category", categoryorder: "array", categoryarray: ids, tickmode: "array", tickvals: ids,
      ticktext: sessions.map((s) => plainLabel(s.title)), automargin: true },
    yaxis: { tickformat: ".0%", rangemode: "tozero", title: { text: "negative share" } } });
}

document.addEventListener("DOMContentLoaded", async () => {
  try {
    await whoami();
    const trend = await api("GET", `/api/courses/${cid}/trend`);
    $("course-title").textContent = trend.title;
    document.title = trend.title + " · ClassMood";
    setExportContext({ course: trend.title });
    const sessions = trend.sessions;
    $("sessions-table").querySelector("tbody").replaceChildren(...sessions.map(sessionRow));
    show($("no-sessions"), sessions.length === 0);
    await trendChart(sessions);
    await sameTopics(sessions);
    document.body.dataset.ready = "1";
  } catch (err) { if (err.status !== 401) showError(err); }
});
