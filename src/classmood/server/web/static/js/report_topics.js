/* The report's topics: side by side (duration, students, observations, faces in view, shares, negative share),
 * one plain sentence per topic that differs clearly from the rest (the server's rule), and editing after class:
 * add (form, or a click on the timeline), rename, move (the row's time, or drag the topic's line), delete. */
import { api, el, fmtDuration, fmtTime, onSubmit, pct, plainLabel, show, showError, topLabel } from "./common.js";
import { chart, sampleText, shareBars } from "./charts.js";

const $ = (id) => document.getElementById(id);
const ctx = { session: null, span: [0, 0], changed: () => {}, topics: [], chartWired: false };

/** "HH:MM:SS" (local) of an epoch, for <input type="time" step="1">. */
function timeValue(epochS) {
  const d = new Date(epochS * 1000);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((x) => String(x).padStart(2, "0")).join(":");
}

/** Epoch seconds of a local "HH:MM[:SS]" on the session's day (the next day if that lies before its start). */
function epochOf(value) {
  const [h, m, s] = value.split(":").map(Number);
  const d = new Date(ctx.span[0] * 1000);
  d.setHours(h, m, s || 0, 0);
  let t = d.getTime() / 1000;
  if (t < ctx.span[0] - 60) t += 86400;
  return t;
}

async function save(method, path, body) {
  try {
    await api(method, path, body);
    showError(null);
    ctx.changed();
  } catch (err) { showError(err); }
}

const topicPath = (id = "") => `/api/sessions/${ctx.session.id}/topics${id === "" ? "" : "/" + id}`;

function editCell(t) {
  const title = el("input", { type: "text", class: "inline", value: t.title, maxlength: 200,
    "aria-label": `Title of topic ${t.title}` });
  const start = el("input", { type: "time", step: 1, class: "inline time", value: timeValue(t.start),
    "aria-label": `Start of topic ${t.title}` });
  const saveBtn = el("button", { type: "button", class: "secondary small", onclick: () => save("PATCH", topicPath(t.id),
    { title: title.value.trim() || t.title, start: epochOf(start.value) }) }, "Save");
  const del = el("button", { type: "button", class: "secondary small", "aria-label": `Delete topic ${t.title}`,
    onclick: () => save("DELETE", topicPath(t.id)) }, "Delete");
  return el("td", { class: "row" }, title, start, saveBtn, del);
}

function row(t) {
  const faces = t.present === null || t.present === undefined ? "–" : `${t.faces_in_view} of ${t.present}`;
  const thin = t.too_few_students;
  return el("tr", { "data-topic-id": t.id, class: thin ? "uncertain" : "" },
    el("th", { scope: "row" }, t.title), el("td", {}, fmtTime(t.start)), el("td", {}, fmtDuration(t.duration_s)),
    el("td", {}, thin ? "too few students" : String(t.students ?? "–")),
    el("td", {}, thin ? "–" : String(t.observations ?? "–")), el("td", {}, faces),
    el("td", {}, thin ? "–" : pct(t.negative_share)), el("td", {}, thin ? "–" : topLabel(t.shares) || "–"),
    editCell(t));
}

/** Stacked shares per topic, each labelled with its n; a thin topic is drawn uncertain (shareBars). */
function topicsChart(topics) {
  const ids = topics.map((t) => String(t.id));
  const ticktext = topics.map((t) => plainLabel(t.title) + "<br>" + (t.too_few_students ? "too few students"
    : sampleText(t.observations, t.students)));
  const rows = topics.map((t) => ({ shares: t.shares, total: t.observations || 0, students: t.students,
    tooFew: t.too_few_students }));
  const students = Math.max(0, ...topics.map((t) => t.students || 0));
  const observations = topics.reduce((sum, t) => sum + (t.observations || 0), 0);
  return chart("topics-chart", "Topics", shareBars(ids, rows), { barmode: "stack",
    height: Math.max(220, 60 * topics.length + 100), xaxis: { tickformat: ".0%", range: [0, 1.001], dtick: 0.2 },
    yaxis: { type: "category", tickmode: "array", tickvals: ids, ticktext, automargin: true, autorange: "reversed" },
    legend: { orientation: "h", y: -0.25, traceorder: "normal" } }, { students, observations });
}

/** Fetch and show the topics of the session; resolves to them ({id, title, start, end}, by start). */
export async function loadTopics(session, span) {
  Object.assign(ctx, { session, span });
  const summary = await api("GET", `/api/sessions/${session.id}/topics/summary`);
  const topics = summary.topics;
  ctx.topics = topics;
  $("topic-rule").textContent = summary.rule && summary.rule.text ? "Sentences: " + summary.rule.text : "";
  $("topic-sentences").replaceChildren(...topics.filter((t) => t.sentence).map((t) => el("li", {}, t.sentence)));
  $("topics-table").querySelector("tbody").replaceChildren(...topics.map(row));
  show($("topics-none"), topics.length === 0);
  show($("topics-chart"), topics.length > 0);
  if (topics.length) await topicsChart(topics);
  return topics;
}

/** A click on the timeline fills the new topic's time; dragging a topic's line moves that topic. */
export function wireTimeline(gd) {
  if (ctx.chartWired || !gd.on) return;
  ctx.chartWired = true;
  gd.on("plotly_click", (e) => {
    const x = e.points && e.points[0] ? Number(e.points[0].x) : NaN;
    if (Number.isFinite(x)) { $("topic-add-start").value = timeValue(x); $("topic-add-title").focus(); }
  });
  gd.on("plotly_relayout", (e) => {
    for (const [key, value] of Object.entries(e)) {
      const m = /^shapes\[(\d+)\]\.x0$/.exec(key);
      const topic = m && ctx.topics[Number(m[1])];
      if (topic) save("PATCH", topicPath(topic.id), { start: Number(value) });
    }
  });
}

/** The "new topic" form; `changed` redraws the page after any edit. */
export function wireTopicEditing(session, span, changed) {
  Object.assign(ctx, { session, span, changed });
  $("topic-add-start").value = timeValue(span[0]);
  onSubmit($("topic-add"), () => {
    const title = $("topic-add-title").value.trim();
    const start = $("topic-add-start").value;
    if (!title || !start) { showError(new Error("Give the topic a title and a start time.")); return; }
    $("topic-add-title").value = "";
    save("POST", topicPath(), { title, start: epochOf(start) });
  });
}
