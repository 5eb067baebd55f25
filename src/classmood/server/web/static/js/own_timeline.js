/* A student's own timeline on the student page (identified sessions the teacher lets students see themselves in):
 * GET /api/me/timeline with the student's own token, drawn under "Your recent expressions". The student page calls
 * refreshOwnTimeline(token, info) whenever one of its readings comes back; this module asks the server at most
 * every REFRESH_MS, and builds its own chart element, so the student page needs nothing else. */
import { api, el, plot } from "./common.js";
import { bucketBars, timelineLayout } from "./charts.js";

const REFRESH_MS = 10_000;
const BUCKET_S = 30;
const state = { last: 0, busy: false };

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
