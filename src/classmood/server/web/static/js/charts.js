/* Charts that show their sample size (issue 22 §6), on one time format, with titled PNG exports.
 *
 * - Every bar says how many observations and students it holds (hover, and a label on thin ones).
 * - A bar below the documented minimum (cm-config's chart_min_observations observations or chart_min_students
 *   students, analytics/service.py, as in the PDF) is drawn as uncertain: faded, hatched, and only n / minimum of
 *   its full height, so one observation never stands as a full-height "100 %".
 * - Empty time is a gap: a bucket without observations draws nothing (bars, never a 0 % valley).
 * - Time axes are numeric (epoch seconds) with a few horizontal ticks written by fmtTime, the browser's locale,
 *   as in the tiles and tables: readable at any session length, never rotated or clipped.
 */
import { config, fmtDate, fmtTime, pct, plainLabel, plot } from "./common.js";

export const MIN_OBS = config.chart_min_observations;
export const MIN_STUDENTS = config.chart_min_students;
const STEPS_S = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];

/** True when a bar of `total` observations from `students` students is too thin to read as shares. */
export function uncertain(total, students) {
  return total < MIN_OBS || (students !== null && students !== undefined && students < MIN_STUDENTS);
}

/** "23 observations, 3 students" (students left out when unknown). */
export function sampleText(total, students) {
  const obs = `${total} observation${total === 1 ? "" : "s"}`;
  return students === null || students === undefined ? obs : `${obs}, ${students} student${students === 1 ? "" : "s"}`;
}

/** A numeric time axis from lo to hi (epoch seconds): at most about 7 horizontal ticks in the locale's time. */
export function timeAxis(lo, hi, extra = {}) {
  const span = Math.max(hi - lo, 1);
  const step = STEPS_S.find((s) => span / s <= 7) || STEPS_S[STEPS_S.length - 1];
  const tickvals = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi; t += step) tickvals.push(t);
  if (!tickvals.length || tickvals[0] - lo > step / 2) tickvals.unshift(lo); // a short span still shows its start
  return Object.assign({ type: "linear", range: [lo, hi], tickvals, ticktext: tickvals.map((t) => fmtTime(t)),
    tickangle: 0, automargin: true, showgrid: false }, extra);
}

// A thin bar keeps its emotion's colour under white hatching, faded: visibly not a figure to read as it stands.
const THIN = { opacity: 0.55,
  pattern: { shape: "/", fillmode: "overlay", fgcolor: "#ffffff", size: 6, solidity: 0.4 } };

/**
 * Stacked bars of a timeline's buckets ({start, counts, shares, total, participants}); a bucket's students are its
 * `participants`, else `students` (a map from its start) when known; none with `oneStudent`. Empty buckets draw nothing; thin ones are uncertain: a trace
 * of their own per emotion (same legend entry), n / minimum of their height, their n written above them.
 */
export function bucketBars(buckets, bucketS, students = new Map(), oneStudent = false) {
  const shown = buckets.filter((b) => b.total > 0 && !b.suppressed).map((b) => {
    // one student's own timeline: the students' minimum is not for it
    const n = oneStudent ? null : b.participants ?? students.get(b.start);
    const thin = uncertain(b.total, n);
    return { b, n, thin, scale: thin ? Math.min(1, b.total / MIN_OBS) : 1, x: b.start + bucketS / 2,
      info: `${fmtTime(b.start)} · ${sampleText(b.total, n)}` + (thin ? " · too few to read as shares" : "") };
  });
  const traces = [];
  for (const thin of [false, true]) {
    const part = shown.filter((s) => s.thin === thin);
    if (!part.length) continue;
    for (const label of config.labels) {
      traces.push({ type: "bar", name: label, legendgroup: label, showlegend: !thin || !shown.some((s) => !s.thin),
        x: part.map((s) => s.x), y: part.map((s) => ((s.b.shares && s.b.shares[label]) || 0) * s.scale),
        width: bucketS * 0.92, customdata: part.map((s) => s.info),
        marker: Object.assign({ color: config.colors[label] }, thin ? THIN : {}),
        hovertemplate: `${label} %{customdata}<extra></extra>` });
    }
  }
  const thin = shown.filter((s) => s.thin);
  if (thin.length) {
    traces.push({ type: "scatter", mode: "text", showlegend: false, hoverinfo: "skip", x: thin.map((s) => s.x),
      y: thin.map((s) => s.scale + 0.05), text: thin.map((s) => "n=" + s.b.total),
      textfont: { size: 11, color: "#4d5560" } });
  }
  return traces;
}

/**
 * One histogram ({counts, shares, total, participants}) as bars with each bar's count on it. Below the minimum
 * (`minObs` observations, or MIN_STUDENTS students unless `students` is false) it is drawn thin and only
 * n / minimum high. `unit` names what is counted ("observations", "faces").
 */
export function histogramBars(h, { minObs = MIN_OBS, students = true, unit = "observations" } = {}) {
  const total = h.total || 0;
  const thin = total > 0 && (total < minObs || (students && h.participants < MIN_STUDENTS));
  const scale = thin ? Math.min(1, total / minObs) : 1;
  return [{ type: "bar", x: config.labels, y: config.labels.map((l) => ((h.shares && h.shares[l]) || 0) * scale),
    text: config.labels.map((l) => String((h.counts && h.counts[l]) || 0)), textposition: "outside",
    marker: Object.assign({ color: config.labels.map((l) => config.colors[l]) }, thin ? THIN : {}),
    customdata: config.labels.map((l) => pct(h.shares && h.shares[l])),
    hovertemplate: `%{x}: %{customdata} (%{text} of ${total} ${unit}, ${h.participants ?? "?"} students)` +
      (thin ? " · too few to read as shares" : "") + "<extra></extra>" }];
}

/**
 * Stacked shares per category (a topic, a student, a course, a session): `rows` of {shares, total, students,
 * tooFew}. A thin row (below the minimum, or tooFew) is faded, hatched and n / minimum long; a tooFew row draws
 * nothing. `horizontal` puts the categories on the y axis.
 */
export function shareBars(ids, rows, horizontal = true) {
  const scale = rows.map((r) => (r.tooFew ? 0 : uncertain(r.total, r.students) ? Math.min(1, r.total / MIN_OBS) : 1));
  const traces = [];
  for (const thin of [false, true]) {
    const idx = rows.map((_, i) => i)
      .filter((i) => (scale[i] < 1 || uncertain(rows[i].total, rows[i].students)) === thin);
    if (!idx.length) continue;
    for (const label of config.labels) {
      const values = idx.map((i) => ((rows[i].shares && rows[i].shares[label]) || 0) * scale[i]);
      const cats = idx.map((i) => ids[i]);
      traces.push(Object.assign(horizontal ? { x: values, y: cats, orientation: "h" } : { x: cats, y: values }, {
        type: "bar", name: label, legendgroup: label, showlegend: !thin || idx.length === rows.length,
        customdata: idx.map((i) => (rows[i].tooFew ? "too few students" : sampleText(rows[i].total, rows[i].students))),
        marker: Object.assign({ color: config.colors[label] }, thin ? THIN : {}),
        hovertemplate: `${label} %{${horizontal ? "x" : "y"}:.0%} of %{customdata}<extra></extra>` }));
    }
  }
  return traces;
}

/** Dashed lines where topics start, each with its title (as plain text) at the top. */
export function topicMarks(topics, editable = false) {
  const shapes = topics.map((t) => ({ type: "line", xref: "x", yref: "paper", x0: t.start, x1: t.start, y0: 0, y1: 1,
    line: { color: "#14365f", width: 2, dash: "dash" }, editable }));
  // alternate heights, so the titles of two topics close together do not overlap
  const annotations = topics.map((t, i) => ({ x: t.start, xref: "x", y: i % 2 ? 0.94 : 1, yref: "paper",
    yanchor: "bottom",
    xanchor: "left", text: plainLabel(t.title), showarrow: false, font: { size: 12, color: "#14365f" } }));
  return { shapes, annotations };
}

/** A marker trace for stored alerts ({fired_at, since, text}): a red triangle at the top of the chart. */
export function alertTrace(alerts) {
  return { type: "scatter", mode: "markers", name: "alert", x: alerts.map((a) => a.fired_at),
    y: alerts.map(() => 1.05), marker: { symbol: "triangle-down", size: 13, color: "#a61b1b" },
    customdata: alerts.map((a) => `${fmtTime(a.fired_at)}: ${plainLabel(a.text)}`),
    hovertemplate: "%{customdata}<extra></extra>" };
}

/** The layout of a timeline: time axis, share axis with room above 100 % for topic titles and alerts. */
export function timelineLayout(lo, hi, marks = { shapes: [], annotations: [] }, extra = {}) {
  return Object.assign({ barmode: "stack", bargap: 0, xaxis: timeAxis(lo, hi),
    yaxis: { tickformat: ".0%", range: [0, 1.1], tickvals: [0, 0.25, 0.5, 0.75, 1], title: { text: "share" } },
    margin: { l: 56, r: 12, t: 28, b: 48 }, shapes: marks.shapes, annotations: marks.annotations,
    legend: { orientation: "h", y: -0.2, traceorder: "normal" } }, extra);
}

// ---- PNG exports with their context -------------------------------------------------------------------------

const context = { course: "", session: "", date: "", students: null, observations: null };
const charts = new Map(); // chart id -> {name, sample}: what its PNG says about itself

/** What every exported PNG of this page says about itself (course, session, date, students, observations). */
export function setExportContext(values) { Object.assign(context, values); }

/** The title an exported chart carries: its name, then course · session · date, then students and observations. */
export function exportTitle(id) {
  const { name, sample } = charts.get(id) || { name: id, sample: null };
  const c = Object.assign({}, context, sample || {});
  const parts = [c.course, c.session, c.date ? fmtDate(c.date) : ""].filter(Boolean).map(plainLabel);
  const counts = [c.students !== null ? `${c.students} student${c.students === 1 ? "" : "s"}` : "",
    c.observations !== null ? `${c.observations} observations` : ""].filter(Boolean);
  return [plainLabel(name), parts.join(" · "), counts.join(", ")].filter(Boolean).join("<br>");
}

/** Download a drawn chart as a PNG whose picture carries exportTitle(id) above the plot; resolves to the title. */
export async function downloadPng(id) {
  const gd = document.getElementById(id);
  const title = exportTitle(id);
  const size = { width: 1100, height: 650 };
  const figure = { data: gd.data, layout: Object.assign({}, gd.layout, size, {
    title: { text: title, x: 0.02, xanchor: "left", font: { size: 15 } },
    margin: Object.assign({}, gd.layout.margin, { t: 110 }) }) };
  const url = await window.Plotly.toImage(figure, Object.assign({ format: "png" }, size));
  const slug = [context.course, context.session, charts.get(id)?.name || id].join("-").replace(/[^\w-]+/g, "_");
  const a = document.createElement("a");
  a.href = url;
  a.download = `classmood-${slug.slice(0, 120)}.png`;
  document.body.append(a);
  a.click();
  a.remove();
  document.body.dataset.lastPngTitle = title; // what the tests read
  return title;
}

/** The modebar's camera button, replaced by one that downloads the titled PNG. */
function exportConfig(id) {
  if (!window.Plotly) return {};
  return { modeBarButtonsToRemove: ["toImage", "sendChartToCloud"],
    modeBarButtonsToAdd: [{ name: "Download PNG with its title", icon: window.Plotly.Icons.camera,
      click: () => downloadPng(id) }] };
}

/** plot() of common.js with the titled PNG export: `name` titles the picture, `sample` ({students, observations})
 * overrides the page's counts for this chart. */
export function chart(id, name, traces, extraLayout = {}, sample = null) {
  charts.set(id, { name, sample });
  return plot(id, traces, extraLayout, exportConfig(id));
}

/** Bucket seconds for a timeline of `spanS` seconds: about 10 to 60 bars at any length. */
export function bucketFor(spanS) {
  const minutes = spanS / 60;
  return minutes < 2 ? 5 : minutes < 10 ? 15 : minutes < 60 ? 60 : minutes < 240 ? 300 : 900;
}
