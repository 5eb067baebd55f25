/* What a student sees of themselves on the student page (identified sessions the teacher lets students see
 * themselves in): this visit's readings under "Your recent expressions" (the last 12 and a histogram), and their
 * timeline, GET /api/me/timeline with the student's own token. The student page calls showOwnLabel(token, info,
 * label) whenever one of its readings comes back; the timeline is asked for at most every REFRESH_MS, and this
 * module builds its own chart element, so the student page needs nothing else. */
import { api, config, el, histogramTrace, plot } from "./common.js";
import { bucketBars, timelineLayout } from "./charts.js";

const REFRESH_MS = 10_000;
const BUCKET_S = 30;
const state = { last: 0, busy: false, labels: [] };

/** The chart's element, made once inside #own-card (after its list), with a heading and a note. */
function container() {
  let box = document.getElementById("own-timeline");
  if (box) return box;
  box = el("div", { id: "own-timeline", class: "chart", role: "figure",
    "aria-label": "Your expressions over this class" });
  const card = document.getElementById("own-card");
  card.append(el("h3", { class: "small" }, "Over this class"),
    el("p", { class: "small muted" }, "Faded, hatched bars hold few readings: read them as a hint only."), box);
  return box;
}

/** Draw the student's own timeline; `info` is the join answer ({aggregate_only, show_self_to_students}). Resolves
 * to the timeline, or null when it was not asked for (aggregate-only, not shown to students, or too soon). */
export async function refreshOwnTimeline(token, info, { force = false } = {}) {
  if (!token || !info || info.aggregate_only || !info.show_self_to_students || state.busy) return null;
  if (!force && Date.now() - state.last < REFRESH_MS) return null;
  state.busy = true;
  state.last = Date.now();
  try {
    const t = await api("GET", `/api/me/timeline?bucket_s=${BUCKET_S}`, undefined, { token });
    const filled = t.buckets.filter((b) => b.total > 0);
    if (!filled.length) return t;
    const lo = filled[0].start;
    const hi = Math.max(filled[filled.length - 1].start + t.bucket_s, lo + 120);
    await plot(container(), bucketBars(t.buckets, t.bucket_s, undefined, true), timelineLayout(lo, hi, undefined, { height: 240,
      margin: { l: 48, r: 8, t: 8, b: 40 } }), { displayModeBar: false });
    return t;
  } finally { state.busy = false; }
}

/** One more reading of the student's own face (nothing unless the session shows students themselves). */
export function showOwnLabel(token, info, label) {
  if (!info.show_self_to_students) return;
  refreshOwnTimeline(token, info).catch((err) => console.warn("own timeline", err)); // at most every 10 s
  state.labels.push(label);
  const recent = state.labels.slice(-12).reverse();
  document.getElementById("own-list").replaceChildren(...recent.map((l) =>
    el("li", { style: `border-left:4px solid ${config.colors[l]}` }, l)));
  const counts = {};
  for (const l of state.labels) counts[l] = (counts[l] || 0) + 1;
  plot("own-chart", [histogramTrace(counts, false)], { showlegend: false, yaxis: { title: { text: "frames" } } },
    { displayModeBar: false, staticPlot: true });
}

/** Delete every expression stored about this student in this session, and forget this visit's readings. */
export async function deleteOwnData(token) {
  await api("DELETE", "/api/me/observations", undefined, { token });
  state.labels = [];
  document.getElementById("own-list").replaceChildren();
}
