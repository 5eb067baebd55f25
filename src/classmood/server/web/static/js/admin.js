/* Platform view (admins): the whole platform, by course, by teacher, by hour of the day, and each course's trend
 * over the weeks (GET /api/platform/trend). */
import { api, negativeShare, pct, plainLabel, showError, utcOffsetS, whoami } from "./common.js";
import { MIN_OBS, chart, histogramBars, sampleText, setExportContext, shareBars } from "./charts.js";

const $ = (id) => document.getElementById(id);
const SHARE_AXIS = { tickformat: ".0%", range: [0, 1.001], dtick: 0.2 };
const LEGEND = { orientation: "h", y: -0.2, traceorder: "normal" };
const HOURS = [0, 3, 6, 9, 12, 15, 18, 21];
// hours and weeks in the browser's locale, as every other time on the pages ("9 PM" or "21", "Nov 30")
// the hours come in the browser's own zone (utc_offset_s), so they are written as UTC clock hours
const hourText = (h) => new Date(Date.UTC(2000, 0, 1, h)).toLocaleTimeString([], { hour: "numeric",
  timeZone: "UTC" });
const weekText = (iso) => new Date(iso + "T00:00:00Z").toLocaleDateString([], { month: "short", day: "numeric",
  timeZone: "UTC" });

/** Stacked shares per course or teacher, each labelled with its n (names as text, never markup). */
function byGroup(id, name, rows, nameOf) {
  const ids = rows.map((_, i) => String(i));
  const ticktext = rows.map((r) => `${plainLabel(nameOf(r))}<br>${sampleText(r.total, r.participants)}`);
  const data = rows.map((r) => ({ shares: r.shares, total: r.total, students: r.participants, tooFew: r.suppressed }));
  return chart(id, name, shareBars(ids, data), { barmode: "stack", xaxis: SHARE_AXIS, legend: LEGEND,
    yaxis: { automargin: true, type: "category", tickmode: "array", tickvals: ids, ticktext },
    height: Math.max(300, 44 * rows.length + 120) });
}

/** Each course's negative share per week; a week without a session is a gap, a thin week a hollow marker. */
async function weeks() {
  const trend = await api("GET", "/api/platform/trend?weeks=12");
  const traces = trend.courses.map((c) => {
    const byWeek = new Map(c.weeks.map((w) => [w.week, w]));
    const points = trend.weeks.map((week) => byWeek.get(week));
    return { type: "scatter", mode: "lines+markers", name: plainLabel(`${c.title} (${c.teacher})`), x: trend.weeks,
      connectgaps: false, y: points.map((w) => (w && w.total && w.negative_share !== null ? w.negative_share : null)),
      marker: { size: 9, symbol: points.map((w) => (w && w.total >= MIN_OBS ? "circle" : "circle-open")) },
      customdata: points.map((w) => (w ? `${w.sessions} session${w.sessions === 1 ? "" : "s"}, ` +
        sampleText(w.total || 0) : "no session")),
      hovertemplate: "week of %{x}: negative share %{y:.0%} (%{customdata})<extra></extra>" };
  });
  return chart("weeks", "Negative share of each course per week", traces, { legend: LEGEND,
    xaxis: { type: "category", tickangle: 0, automargin: true,
      tickmode: "array", tickvals: trend.weeks, ticktext: trend.weeks.map(weekText) },
    yaxis: { tickformat: ".0%", rangemode: "tozero", title: { text: "negative share" } } });
}

async function load() {
  const [platform, overview] = await Promise.all([api("GET", "/api/platform/histogram"),
    api("GET", `/api/platform/overview?utc_offset_s=${utcOffsetS()}`)]);
  $("total").textContent = platform.total;
  $("n-courses").textContent = overview.courses.length;
  $("n-teachers").textContent = overview.teachers.length;
  $("negative-share").textContent = platform.total ? pct(negativeShare(platform.shares)) : "–";
  setExportContext({ course: "All courses", students: platform.participants, observations: platform.total });
  await chart("platform", "All sessions", histogramBars(platform), { yaxis: SHARE_AXIS, showlegend: false });
  const hours = overview.hours.slice().sort((a, b) => a.hour - b.hour);
  // A numeric 0-23 axis: every hour keeps its place even when most hours have no data.
  const rows = hours.map((h) => ({ shares: h.shares, total: h.total, students: h.participants, tooFew: h.suppressed }));
  await chart("hours", "By hour of the day", shareBars(hours.map((h) => h.hour), rows, false),
    { barmode: "stack", yaxis: SHARE_AXIS, legend: LEGEND,
      xaxis: { type: "linear", range: [-0.5, 23.5], tickvals: HOURS, ticktext: HOURS.map(hourText) } });
  await byGroup("courses", "By course", overview.courses, (c) => `${c.title} (${c.teacher})`);
  await byGroup("teachers", "By teacher", overview.teachers,
    (t) => t.name || t.teacher || t.email || String(t.teacher_id));
  await weeks();
  document.body.dataset.ready = "1";
}

document.addEventListener("DOMContentLoaded", async () => {
  try { await whoami(); await load(); } catch (err) {
    if (err.status === 403) showError(new Error("The platform view is for administrators."));
    else if (err.status !== 401) showError(err);
  }
});
