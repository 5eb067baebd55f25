/* Report after class: the whole session, the timeline with topics and alerts, topics side by side (editable),
 * per student (a row opens that student's timeline); PDF, CSV and titled PNG downloads. */
import {
  api, config, el, fmtDate, negativeShare, pct, plainLabel, show, showError, topLabel, utcOffsetS, whoami,
} from "./common.js";
import { alertTrace, bucketBars, bucketFor, chart, downloadPng, histogramBars, sampleText, setExportContext, shareBars,
  timelineLayout, topicMarks } from "./charts.js";
import { sessionSpan, showStudentTimeline, wireStudentPanel } from "./student_timeline.js";
import { loadTopics, wireTimeline, wireTopicEditing } from "./report_topics.js";

const sid = config.session_id;
const $ = (id) => document.getElementById(id);
const state = { session: null, topics: [], alerts: [], span: [0, 0] };

async function whole() {
  const h = await api("GET", `/api/sessions/${sid}/histogram`);
  $("whole-total").textContent = h.suppressed ? "Too few students to show the class without revealing individuals."
    : sampleText(h.total, h.participants) + (h.total ? ` · negative share ${pct(negativeShare(h.shares))}` : "");
  setExportContext({ students: h.participants, observations: h.total });
  await chart("whole", "Whole session", histogramBars(h), { showlegend: false, xaxis: { automargin: true },
    yaxis: { tickformat: ".0%", title: { text: "share of observations" }, range: [0, 1.1] } });
}

/** The timeline with topics (draggable lines) and alerts; a click on it fills the "new topic" time. */
async function segments() {
  const [lo, hi] = state.span;
  const chosen = Number($("segment").value);
  const bucket = chosen || bucketFor(hi - lo);
  const range = `bucket_s=${bucket}&since=${lo}&until=${hi}`;
  const [t, presence] = await Promise.all([api("GET", `/api/sessions/${sid}/timeline?${range}`),
    api("GET", `/api/sessions/${sid}/presence?${range}`).catch(() => ({ buckets: [] }))]);
  const students = new Map(presence.buckets.map((b) => [b.start, b.faces_in_view]));
  const traces = bucketBars(t.buckets, t.bucket_s, students);
  if (state.alerts.length) traces.push(alertTrace(state.alerts));
  await chart("segments", "Shares of emotions over time", traces,
    timelineLayout(lo, hi, topicMarks(state.topics, true), { height: 380 }), null);
  wireTimeline($("segments"));
}

async function students() {
  let list;
  try {
    list = await api("GET", `/api/sessions/${sid}/participants`);
  } catch (err) {
    if (err.status !== 403) throw err;
    $("students-note").textContent = "Aggregate-only session: no per-student figures.";
    show($("students-note"));
    for (const id of ["students-chart", "students-help", "students-table", "download-students-csv"]) show($(id), false);
    return;
  }
  show($("download-students-csv"));
  // One category per participant (two students may share a name); the tick shows the name as plain text:
  // plotly would render markup in it (a name "<a href=...>" would become a link).
  const ids = list.map((p) => String(p.participant_id));
  const yaxis = { automargin: true, type: "category", tickmode: "array", tickvals: ids,
    ticktext: list.map((p) => `${plainLabel(p.display_name)}<br>${sampleText(p.observations)}`) };
  const traces = shareBars(ids, list.map((p) => ({ shares: p.shares, total: p.observations, students: null })));
  await chart("students-chart", "Per student", traces, { barmode: "stack", yaxis,
    legend: { orientation: "h", y: -0.2, traceorder: "normal" },
    xaxis: { tickformat: ".0%", range: [0, 1.001], dtick: 0.2 }, height: Math.max(280, 40 * list.length + 120) });
  const open = (p) => showStudentTimeline(state.session, p, state.topics, ...state.span);
  const rows = list.map((p) => el("tr", { "data-participant-id": p.participant_id, class: "clickable",
    onclick: () => open(p) },
  el("td", {}, el("button", { type: "button", class: "link" }, p.display_name)),
  el("td", {}, String(p.observations)), el("td", {}, topLabel(p.counts) || "–")));
  $("students-table").querySelector("tbody").replaceChildren(...rows);
}

async function alerts() {
  state.alerts = await api("GET", `/api/sessions/${sid}/alerts`).catch((err) => {
    if (err.status === 404) return [];
    throw err;
  });
  $("alerts").replaceChildren(...state.alerts.map((a) => el("li", { class: "alert", "data-alert-id": a.id },
    `${fmtDate(a.fired_at)}: ${a.text}`)));
  show($("alerts-none"), state.alerts.length === 0);
}

/** Topics changed (added, renamed, moved, deleted): redraw what shows them. */
async function topicsChanged() {
  state.topics = await loadTopics(state.session, state.span);
  await segments();
}

async function header() {
  const s = state.session;
  $("session-title").textContent = "Report: " + s.title;
  $("status").textContent = s.status;
  $("meta").textContent = `Started ${fmtDate(s.started_at)} · ended ${fmtDate(s.ended_at)}`;
  $("course-link").href = `/teacher/courses/${s.course_id}`;
  $("download-pdf").href = `/api/sessions/${sid}/report.pdf?utc_offset_s=${utcOffsetS()}`; // the PDF in our time
  show($("course-link"));
  const course = await api("GET", `/api/courses/${s.course_id}`).catch(() => null);
  setExportContext({ course: course ? course.title : "", session: s.title, date: s.started_at });
}

document.addEventListener("DOMContentLoaded", async () => {
  $("download-png").addEventListener("click", () => downloadPng("whole"));
  $("download-segments-png").addEventListener("click", () => downloadPng("segments"));
  $("segment").addEventListener("change", () => segments().catch(showError));
  wireStudentPanel();
  try {
    await whoami();
    state.session = await api("GET", `/api/sessions/${sid}`);
    state.span = sessionSpan(state.session);
    await header();
    wireTopicEditing(state.session, state.span, () => topicsChanged().catch(showError));
    await Promise.all([whole(), alerts(), students()]);
    await topicsChanged();
    document.body.dataset.ready = "1"; // the charts are drawn (tests and screenshots wait for this)
  } catch (err) { if (err.status !== 401) showError(err); }
});
