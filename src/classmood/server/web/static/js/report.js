/* Report after class: whole-session histogram, per time segment, per student; CSV and PNG downloads. */
import {
  api, config, el, fmtDate, histogramTrace, negativeShare, pct, plainLabel, plot, show, showError, stackedTraces,
  topLabel, whoami
} from "./common.js";

const sid = config.session_id;
const $ = (id) => document.getElementById(id);
let session = null;

async function whole() {
  const h = await api("GET", `/api/sessions/${sid}/histogram`);
  const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
  $("whole-total").textContent = `${plural(h.total, "observation")} from ${plural(h.participants, "student")}` +
    (h.total ? ` · negative share ${pct(negativeShare(h.shares))}` : "");
  await plot("whole", [histogramTrace(h.shares, true)],
    { yaxis: { tickformat: ".0%", title: { text: "share of observations" } }, showlegend: false });
}

async function segments() {
  const bucket = Number($("segment").value);
  const since = session.started_at ? `&since=${Date.parse(session.started_at) / 1000}` : "";
  const until = session.ended_at ? `&until=${Date.parse(session.ended_at) / 1000}` : "";
  const t = await api("GET", `/api/sessions/${sid}/timeline?bucket_s=${bucket}${since}${until}`);
  const xs = t.buckets.map((b) => new Date(b.start * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
  await plot("segments", stackedTraces(xs, t.buckets.map((b) => b.shares)),
    { barmode: "stack", yaxis: { tickformat: ".0%", range: [0, 1] }, xaxis: { type: "category" } });
}

async function students() {
  let list;
  try {
    list = await api("GET", `/api/sessions/${sid}/participants`);
  } catch (err) {
    if (err.status !== 403) throw err;
    $("students-note").textContent = "Aggregate-only session: no per-student figures.";
    show($("students-note"));
    show($("students-chart"), false);
    return;
  }
  // One category per participant (two students may share a name); the tick shows the name as plain text:
  // plotly would render markup in it (a name "<a href=...>" would become a link).
  const ids = list.map((p) => String(p.participant_id));
  const yaxis = { automargin: true, type: "category", tickmode: "array", tickvals: ids,
    ticktext: list.map((p) => plainLabel(p.display_name)) };
  await plot("students-chart", stackedTraces(ids, list.map((p) => p.shares), "bar", "h"),
    { barmode: "stack", xaxis: { tickformat: ".0%", range: [0, 1.001], dtick: 0.2 }, yaxis,
      height: Math.max(280, 40 * list.length + 120) });
  const rows = list.map((p) => el("tr", { "data-participant-id": p.participant_id }, el("td", {}, p.display_name),
    el("td", {}, String(p.observations)), el("td", {}, topLabel(p.counts) || "–")));
  $("students-table").querySelector("tbody").replaceChildren(...rows);
}

function png(id, name) {
  const title = (session && session.title ? session.title : "session").replace(/[^\w-]+/g, "_");
  return window.Plotly.downloadImage(id, { format: "png", filename: `classmood-${title}-${name}`, width: 1000, height: 600 });
}

document.addEventListener("DOMContentLoaded", async () => {
  $("download-png").addEventListener("click", () => png("whole", "histogram"));
  $("download-segments-png").addEventListener("click", () => png("segments", "segments"));
  $("segment").addEventListener("change", () => segments().catch(showError));
  try {
    await whoami();
    session = await api("GET", `/api/sessions/${sid}`);
    $("session-title").textContent = "Report: " + session.title;
    $("status").textContent = session.status;
    $("meta").textContent = `Started ${fmtDate(session.started_at)} · ended ${fmtDate(session.ended_at)}`;
    await Promise.all([whole(), segments(), students()]);
    document.body.dataset.ready = "1"; // the charts are drawn (tests and screenshots wait for this)
  } catch (err) { if (err.status !== 401) showError(err); }
});
