/* Platform view (admins): the whole platform, by course, by teacher and by hour of the day. */
import {
  api, histogramTrace, negativeShare, pct, plainLabel, plot, showError, stackedTraces, whoami
} from "./common.js";

const $ = (id) => document.getElementById(id);
const SHARE_AXIS = { tickformat: ".0%", range: [0, 1.001], dtick: 0.2 };

function byGroup(id, rows, nameOf) {
  const names = rows.map((row) => plainLabel(nameOf(row))); // titles and names as text, never markup
  return plot(id, stackedTraces(names, rows.map((r) => r.shares), "bar", "h"),
    { barmode: "stack", xaxis: SHARE_AXIS, yaxis: { automargin: true, type: "category" },
      height: Math.max(300, 36 * rows.length + 120) });
}

async function load() {
  const [platform, overview] = await Promise.all([api("GET", "/api/platform/histogram"),
    api("GET", "/api/platform/overview")]);
  $("total").textContent = platform.total;
  $("n-courses").textContent = overview.courses.length;
  $("n-teachers").textContent = overview.teachers.length;
  $("negative-share").textContent = platform.total ? pct(negativeShare(platform.shares)) : "–";
  await plot("platform", [histogramTrace(platform.shares, true)], { yaxis: SHARE_AXIS, showlegend: false });
  const hours = overview.hours.slice().sort((a, b) => a.hour - b.hour);
  // A numeric 0-23 axis: every hour keeps its place even when most hours have no data.
  await plot("hours", stackedTraces(hours.map((h) => h.hour), hours.map((h) => h.shares)),
    { barmode: "stack", yaxis: SHARE_AXIS, xaxis: { type: "linear", range: [-0.5, 23.5], dtick: 3, ticksuffix: ":00" } });
  await byGroup("courses", overview.courses, (c) => `${c.title} (${c.teacher})`);
  await byGroup("teachers", overview.teachers, (t) => t.name || t.teacher || t.email || String(t.teacher_id));
  document.body.dataset.ready = "1";
}

document.addEventListener("DOMContentLoaded", async () => {
  try { await whoami(); await load(); } catch (err) {
    if (err.status === 403) showError(new Error("The platform view is for administrators."));
    else if (err.status !== 401) showError(err);
  }
});
