/* Live dashboard: current histogram, timeline since start with the topics, students present and faces in view,
 * student tiles (a click shows that student's timeline), students to check on, stored alerts (SSE + API). */
import {
  api, backoff, config, el, fmtTime, negativeShare, onSubmit, pct, show, showError, topLabel, whoami,
} from "./common.js";
import {
  MIN_STUDENTS, bucketBars, bucketFor, chart, histogramBars, setExportContext, timeAxis, timelineLayout, topicMarks,
} from "./charts.js";
import { sessionSpan, showStudentTimeline, wireStudentPanel } from "./student_timeline.js";
import { wireAlertRule, showAlertRule, loadAlerts, addAlert } from "./live_alerts.js";

const sid = config.session_id;
const $ = (id) => document.getElementById(id);
const AWAY_AFTER_S = 30; // a tile says "left" when its student sent nothing for this long
const state = { session: null, aggregateOnly: false, tiles: new Map(), timers: {}, source: null, topics: [],
  reopens: 0 };

/** Run fn at most once per `ms`, trailing call included: bursts of events cost one request. */
function throttle(name, ms, fn) {
  return () => {
    if (state.timers[name]) return;
    state.timers[name] = setTimeout(async () => { state.timers[name] = null; await fn(); }, ms);
  };
}

/** The session as the server answered it (GET, PATCH, start/end): its status and every setting. */
function renderSession(s) {
  state.session = s;
  $("session-title").textContent = s.title;
  document.title = s.title + " · live · ClassMood";
  $("join-url").textContent = new URL(s.join_url || "/join/" + s.code, location.origin).href;
  renderStatus(s.status);
  renderSettings(s);
}

/** The status alone (the stream's status event): the settings stay as the last answer left them, so an event that
 * arrives while a change of settings is on its way cannot undo the teacher's click. */
function renderStatus(status) {
  if (state.session) state.session.status = status;
  const pill = $("status");
  pill.textContent = status;
  pill.className = "pill " + (status === "live" ? "live" : status === "ended" ? "ended" : "");
  show($("start-session"), status === "scheduled");
  show($("end-session"), status === "live");
  show($("topic-form"), status !== "ended");
}

function renderSettings(s) {
  $("aggregate-only").checked = Boolean(s.aggregate_only);
  $("show-self").checked = Boolean(s.show_self_to_students);
  $("analysis-device").checked = s.analysis_mode === "device";
  $("allow-fallback").checked = Boolean(s.allow_server_fallback);
  $("allow-fallback").disabled = s.analysis_mode !== "device";
  showAlertRule(s);
  setExportContext({ session: s.title, date: s.started_at });
  setAggregateOnly(Boolean(s.aggregate_only));
}

function setAggregateOnly(on) {
  state.aggregateOnly = on;
  for (const id of ["tiles", "tiles-help", "check-card"]) show($(id), !on);
  show($("tiles-note"), on);
  if (on) show($("student-panel"), false);
  else { loadParticipants().catch(showError); refreshCheckOn().catch(showError); }
}

async function refreshHistogram() {
  // Each face counted once, by its readings of the last smooth_window_s seconds: one odd frame flips nothing.
  const smooth = config.smooth_window_s > 0 ? `&smooth_s=${config.smooth_window_s}` : "";
  // Aggregate-only figures come in whole cells, each shown once it is sealed: this window overlaps exactly
  // the newest sealed cell.
  const span = state.aggregateOnly ? config.private_cell_s + config.private_seal_s : config.live_window_s;
  const h = await api("GET", `/api/sessions/${sid}/histogram?last_s=${span}${smooth}`);
  const note = $("hist-note");
  const cells = `Aggregate-only: the class over whole ${config.private_cell_s}-second spans, ` +
    `each shown ${config.private_seal_s} s after it ends.`;
  note.textContent = h.suppressed ? "Too few students right now to show the class without revealing individuals."
    : state.aggregateOnly ? cells : "";
  show(note, Boolean(h.suppressed) || state.aggregateOnly);
  // "now" counts faces, one per student: thin below MIN_STUDENTS faces
  await chart("histogram", "Emotions now", histogramBars(h, { minObs: MIN_STUDENTS, unit: "faces" }),
    { yaxis: { tickformat: ".0%", range: [0, 1.12], title: { text: "share of faces" } }, showlegend: false },
    { students: h.participants, observations: h.total });
  const rows = config.labels.map((l) => el("tr", { "data-label": l }, el("th", { scope: "row" }, l),
    el("td", {}, String((h.counts && h.counts[l]) || 0)), el("td", {}, pct(h.shares && h.shares[l]))));
  $("hist-table").replaceChildren(...rows);
  $("top-label").textContent = topLabel(h.counts) || "–";
  $("negative-share").textContent = pct(h.total ? negativeShare(h.shares) : null);
}

/** GET a JSON route, or `fallback` when it answers 403/404 (aggregate-only, or a server without the route). */
async function optional(path, fallback) {
  try { return await api("GET", path); } catch (err) {
    if (err.status === 403 || err.status === 404) return fallback;
    throw err;
  }
}

async function refreshTimeline() {
  const [lo, hi] = sessionSpan(state.session || {});
  const bucket = bucketFor(hi - lo);
  // asked up to now: the axis runs on to hi, but buckets of the future would read as "nobody present"
  const range = `bucket_s=${bucket}&since=${lo}&until=${Math.min(hi, Date.now() / 1000)}`;
  const [t, presence, topics] = await Promise.all([api("GET", `/api/sessions/${sid}/timeline?${range}`),
    optional(`/api/sessions/${sid}/presence?${range}`, { buckets: [] }), loadTopics()]);
  const students = new Map(presence.buckets.map((b) => [b.start, b.faces_in_view]));
  const total = t.buckets.reduce((sum, b) => sum + b.total, 0);
  await chart("timeline", "Shares of emotions over time", bucketBars(t.buckets, t.bucket_s, students),
    timelineLayout(lo, hi, topicMarks(topics)), { observations: total });
  const xs = presence.buckets.map((b) => b.start + presence.bucket_s / 2);
  const line = (key, name, color, dash) => ({ type: "scatter", mode: "lines+markers", name, x: xs, connectgaps: false,
    y: presence.buckets.map((b) => (b.suppressed ? null : b[key])), line: { color, shape: "hv", dash },
    hovertemplate: `${name} %{y}<extra></extra>` });
  await chart("presence", "Students present and faces in view",
    [line("present", "students present", "#14365f", "solid"), line("faces_in_view", "faces in view", "#2e8540", "dot")],
    { xaxis: timeAxis(lo, hi), yaxis: { rangemode: "tozero", dtick: 1, title: { text: "students" } },
      shapes: topicMarks(topics).shapes });
}

async function loadTopics() {
  state.topics = await optional(`/api/sessions/${sid}/topics`, []);
  const running = state.topics.filter((t) => t.end === null || t.end === undefined).pop();
  $("topic-now").textContent = running ? `Now: ${running.title} (since ${fmtTime(running.start)})` : "";
  return state.topics;
}

async function startTopic() {
  const input = $("topic-title");
  const title = input.value.trim();
  if (!title) { input.focus(); return; }
  try {
    await api("POST", `/api/sessions/${sid}/topics`, { title });
    input.value = "";
    await refreshTimeline();
  } catch (err) { showError(err); }
}

function tileFor(pid, name) {
  let tile = state.tiles.get(pid);
  if (!tile) {
    tile = el("button", { type: "button", class: "tile", "data-participant-id": pid },
      el("span", { class: "name" }, name || "student"), el("span", { class: "state" }, "no face yet"),
      el("span", { class: "small muted when" }, ""));
    tile.addEventListener("click", () => {
      const [lo, hi] = sessionSpan(state.session);
      showStudentTimeline(state.session, { participant_id: pid, display_name: tile.querySelector(".name").textContent },
        state.topics, lo, hi);
    });
    state.tiles.set(pid, tile);
    $("tiles").append(tile);
  }
  return tile;
}

/** `ts`: the student's newest observation; `seen`: their newest sample of any kind, with or without a face (the
 * participants' last_seen_ts where the server gives it). */
function updateTile(pid, name, label, ts, seen = null) {
  const tile = tileFor(pid, name);
  if (name) tile.querySelector(".name").textContent = name;
  if (label) {
    tile.dataset.label = label;
    tile.style.borderLeftColor = config.colors[label] || "";
  }
  if (ts && ts > Number(tile.dataset.ts || 0)) tile.dataset.ts = ts;
  if (seen && seen > Number(tile.dataset.seen || 0)) tile.dataset.seen = seen;
  paintTile(tile, Date.now() / 1000);
}

/** A tile shows its student's steadied label; "no face in view" while samples come without a face; "left" once
 * nothing came for AWAY_AFTER_S. Never a stale label. */
function paintTile(tile, now) {
  const ts = Number(tile.dataset.ts || 0);
  const seen = Math.max(ts, Number(tile.dataset.seen || 0));
  const gone = seen > 0 && now - seen > AWAY_AFTER_S;
  const noFace = !gone && seen > 0 && (!ts || now - ts > AWAY_AFTER_S);
  tile.classList.toggle("away", gone || noFace);
  tile.querySelector(".state").textContent = gone ? "left" : noFace ? "no face in view"
    : tile.dataset.label || "no face yet";
  tile.querySelector(".when").textContent = gone ? "last seen " + fmtTime(seen) : ts ? fmtTime(ts) : "";
  tile.setAttribute("aria-label", `${tile.querySelector(".name").textContent}: ` +
    `${tile.querySelector(".state").textContent}. Show their timeline`);
}

async function loadParticipants() {
  try {
    const list = await api("GET", `/api/sessions/${sid}/participants`);
    for (const p of list) {
      updateTile(p.participant_id, p.display_name, p.now_label || p.last_label, p.last_ts, p.last_seen_ts);
    }
    markAway();
  } catch (err) {
    if (err.status === 403) { show($("tiles"), false); show($("tiles-note")); } else throw err;
  }
}

function markAway() {
  const now = Date.now() / 1000;
  for (const tile of state.tiles.values()) paintTile(tile, now);
}

/** "Students to check on": the server's rule (its text on hover and under "How students are picked"). */
async function refreshCheckOn() {
  if (state.aggregateOnly) return;
  const c = await optional(`/api/sessions/${sid}/check-on`, null);
  if (!c) { show($("check-card"), false); return; }
  const rule = c.rule && c.rule.text ? c.rule.text : "";
  $("check-rule").textContent = rule;
  $("check-rule-summary").title = rule;
  $("check-h").title = rule;
  $("check-list").replaceChildren(...c.students.map((s) => el("li", {}, el("button", { type: "button",
    class: "link", "data-participant-id": s.participant_id, onclick: () => {
      const [lo, hi] = sessionSpan(state.session);
      showStudentTimeline(state.session, s, state.topics, lo, hi);
    } }, s.display_name), ` negative share ${pct(s.recent.negative_share)} in the last minutes, ` +
    `${pct(s.earlier.negative_share)} before (${s.recent.observations} and ${s.earlier.observations} observations)`)));
  show($("check-none"), c.students.length === 0);
  const thin = c.not_enough_data || [];
  $("check-thin").textContent = thin.length ? `Not enough data yet: ${thin.map((s) => s.display_name).join(", ")}` : "";
  show($("check-thin"), thin.length > 0);
}

const histSoon = throttle("hist", 700, () => refreshHistogram().catch(showError));
const timelineSoon = throttle("timeline", 3000, () => refreshTimeline().catch(showError));
const participantsSoon = throttle("participants", 1000, () => loadParticipants().catch(showError));

function connectLive() {
  const conn = $("conn");
  const source = new EventSource(`/api/sessions/${sid}/live`, { withCredentials: true });
  source.onopen = () => { state.reopens = 0; conn.textContent = "live updates"; conn.className = "pill small live"; };
  source.onerror = () => {
    conn.textContent = "reconnecting…"; conn.className = "pill small bad";
    // The browser retries a dropped stream itself, but gives up for good on an answer other than 200 (a 503
    // while the database restarts): open a new one after a backoff, until the session ends or the login does.
    if (source.readyState === EventSource.CLOSED && state.source === source) reopenLive();
  };
  source.addEventListener("observation", (e) => {
    const o = JSON.parse(e.data);
    // The event carries the raw label: the tile shows the steadied one, read from the server (throttled).
    if (!state.aggregateOnly) { updateTile(o.participant_id, o.display_name, null, o.ts); participantsSoon(); }
    histSoon();
    timelineSoon();
  });
  source.addEventListener("presence", (e) => {
    const p = JSON.parse(e.data);
    $("present").textContent = p.present;
    $("faces").textContent = p.faces_visible; // the event's name for faces in view
    if (!state.aggregateOnly) loadParticipants().catch(showError); // a new student gets a tile at once
  });
  source.addEventListener("alert", (e) => addAlert(JSON.parse(e.data)));
  source.addEventListener("topics", () => timelineSoon()); // a topic changed here or in another tab
  source.addEventListener("status", (e) => {
    const s = JSON.parse(e.data);
    renderStatus(s.status);
    if (s.status === "ended") closeLive(source);
  });
  source.addEventListener("end", () => {
    // The server ended the stream: this login may no longer watch (signed out, disabled, course taken away).
    source.close();
    state.source = null; // never reopened
    conn.textContent = "not signed in"; conn.className = "pill small bad";
  });
  return source;
}

function reopenLive() {
  state.source = null;
  setTimeout(() => {
    if (state.source || (state.session && state.session.status === "ended")) return;
    state.source = connectLive();
  }, backoff(state.reopens++));
}

function closeLive(source) {
  // An ended session has no more events: stop the browser's automatic reconnects.
  if (source) source.close();
  $("conn").textContent = "session ended";
  $("conn").className = "pill small ended";
}

async function act(what) {
  try {
    renderSession(await api("POST", `/api/sessions/${sid}/${what}`));
    if (state.session.status === "ended") closeLive(state.source);
    else if (!state.source) state.source = connectLive();
    await refreshTimeline();
  } catch (err) { showError(err); }
}

async function patch(body) {
  try { renderSession(await api("PATCH", `/api/sessions/${sid}`, body)); return true; } catch (err) {
    showError(err);
    return false;
  }
}

function wireControls() {
  wireAlertRule(patch);
  wireStudentPanel();
  $("window-s").textContent = Math.round(config.live_window_s);
  $("report-link").href = `/teacher/sessions/${sid}/report`;
  $("start-session").addEventListener("click", () => act("start"));
  $("end-session").addEventListener("click", () => act("end"));
  onSubmit($("topic-form"), startTopic);
  $("aggregate-only").addEventListener("change", (e) => patch({ aggregate_only: e.target.checked }));
  $("show-self").addEventListener("change", (e) => patch({ show_self_to_students: e.target.checked }));
  $("analysis-device").addEventListener("change",
    (e) => patch({ analysis_mode: e.target.checked ? "device" : "server" }));
  $("allow-fallback").addEventListener("change", (e) => patch({ allow_server_fallback: e.target.checked }));
  $("copy-link").addEventListener("click", async () => {
    try { await navigator.clipboard.writeText($("join-url").textContent); } catch (_) { /* the link is visible */ }
    $("copy-done").textContent = "Link copied";
    setTimeout(() => { $("copy-done").textContent = ""; }, 2000);
  });
}

async function courseTitle(courseId) {
  const course = await optional(`/api/courses/${courseId}`, null);
  if (course) setExportContext({ course: course.title });
}

document.addEventListener("DOMContentLoaded", async () => {
  wireControls();
  try {
    await whoami();
    renderSession(await api("GET", `/api/sessions/${sid}`));
    await Promise.all([refreshHistogram(), refreshTimeline(), loadAlerts(sid), courseTitle(state.session.course_id)]);
    if (state.session.status === "ended") closeLive(null); else state.source = connectLive();
    // Without events the "last N seconds" window must still move on, and tiles must say "left".
    setInterval(() => { histSoon(); markAway(); }, 3000);
    setInterval(timelineSoon, 15000);
    setInterval(() => refreshCheckOn().catch(showError), 15000);
    document.body.dataset.ready = "1";
  } catch (err) { if (err.status !== 401) showError(err); }
});
