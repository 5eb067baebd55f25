/* One student's timeline with the lesson's topics marked (identified sessions only): opened by clicking a tile on
 * the live dashboard or a row of the report. The panel is a <section id="student-panel"> of the page. */
import { api, epoch, show, showError } from "./common.js";
import { bucketBars, bucketFor, chart, timelineLayout, topicMarks } from "./charts.js";

const $ = (id) => document.getElementById(id);

/** Show `participant` ({participant_id, display_name}) of session `session` over [lo, hi] with `topics`. */
export async function showStudentTimeline(session, participant, topics, lo, hi) {
  const panel = $("student-panel");
  $("student-name").textContent = participant.display_name;
  show(panel);
  const bucket = bucketFor(hi - lo);
  try {
    const t = await api("GET", `/api/sessions/${session.id}/participants/${participant.participant_id}` +
      `/timeline?bucket_s=${bucket}&since=${lo}&until=${hi}`);
    const total = t.buckets.reduce((sum, b) => sum + b.total, 0);
    $("student-total").textContent = `${total} observation${total === 1 ? "" : "s"} in this session`;
    await chart("student-chart", `Timeline of ${participant.display_name}`, bucketBars(t.buckets, t.bucket_s, undefined, true),
      timelineLayout(lo, hi, topicMarks(topics)), { students: 1, observations: total });
    panel.dataset.participantId = participant.participant_id;
    panel.scrollIntoView({ block: "nearest" });
  } catch (err) { showError(err); }
}

/** Wire the panel's close button once. */
export function wireStudentPanel() {
  $("student-close").addEventListener("click", () => { show($("student-panel"), false); });
}

/** [lo, hi] of a session in epoch seconds: its start (or `fallback`) to its end (or now). */
export function sessionSpan(session, fallback = Date.now() / 1000) {
  // from the whole second: a topic may start at the session's start rounded down (time inputs have seconds)
  const lo = Math.floor(epoch(session.started_at) || fallback);
  return [lo, Math.max(epoch(session.ended_at) || Date.now() / 1000, lo + 60)];
}
