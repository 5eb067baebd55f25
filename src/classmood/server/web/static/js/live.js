/* Live dashboard: current histogram, timeline since start, presence, student tiles, alerts (SSE + API). */
import {
  api, config, el, fmtTime, histogramTrace, negativeShare, pct, plot, show, showError, stackedTraces, topLabel,
  whoami
} from "./common.js";

const sid = config.session_id;
const AWAY_AFTER_S = 30; // a tile greys out when its student sent no face for this long
const state = { session: null, aggregateOnly: false, tiles: new Map(), highSince: null, alerted: false,
  timers: {}, lastHist: null, source: null };

/** Run fn at most once per `ms`, trailing call included: bursts of events cost one request. */
function throttle(name, ms, fn) {
  return () => {
    if (state.timers[name]) return;
    state.timers[name] = setTimeout(async () => { state.timers[name] = null; await fn(); }, ms);
  };
}

function renderSession(s) {
  state.session = s;
  document.getElementById("session-title").textContent = s.title;
  document.title = s.title + " · live · ClassMood";
  const pill = document.getElementById("status");
  pill.textContent = s.status;
  pill.className = "pill " + (s.status === "live" ? "live" : s.status === "ended" ? "ended" : "");
  const url = new URL(s.join_url || "/join/" + s.code, location.origin).href;
  document.getElementById("join-url").textContent = url;
  show(document.getElementById("start-session"), s.status === "scheduled");
  show(document.getElementById("end-session"), s.status === "live");
  document.getElementById("aggregate-only").checked = Boolean(s.aggregate_only);
  document.getElementById("show-self").checked = Boolean(s.show_self_to_students);
  document.getElementById("analysis-device").checked = s.analysis_mode === "device";
  document.getElementById("allow-fallback").checked = Boolean(s.allow_server_fallback);
  document.getElementById("allow-fallback").disabled = s.analysis_mode !== "device";
  setAggregateOnly(Boolean(s.aggregate_only));
}

function setAggregateOnly(on) {
  state.aggregateOnly = on;
  show(document.getElementById("tiles"), !on);
  show(document.getElementById("tiles-note"), on);
  if (!on) loadParticipants();
}

async function refreshHistogram() {
  // Each face counted once, by its readings of the last smooth_window_s seconds: one odd frame flips nothing.
  const smooth = config.smooth_window_s > 0 ? `&smooth_s=${config.smooth_window_s}` : "";
  // Aggregate-only figures come in whole cells, each shown once it is sealed: this window overlaps exactly
  // the newest sealed cell.
  const span = state.aggregateOnly ? config.private_cell_s + config.private_seal_s : config.live_window_s;
  const h = await api("GET", `/api/sessions/${sid}/histogram?last_s=${span}${smooth}`);
  state.lastHist = h;
  const note = document.getElementById("hist-note");
  const cells = `Aggregate-only: the class over whole ${config.private_cell_s}-second spans, ` +
    `each shown ${config.private_seal_s} s after it ends.`;
  note.textContent = h.suppressed ? "Too few faces right now to show the class without revealing individuals."
    : state.aggregateOnly ? cells : "";
  show(note, Boolean(h.suppressed) || state.aggregateOnly);
  plot("histogram", [histogramTrace(h.shares, true)],
    { yaxis: { tickformat: ".0%", range: [0, 1], title: { text: "share of faces" } }, showlegend: false });
  const rows = config.labels.map((l) => el("tr", { "data-label": l }, el("th", { scope: "row" }, l),
    el("td", {}, String((h.counts && h.counts[l]) || 0)), el("td", {}, pct(h.shares && h.shares[l]))));
  document.getElementById("hist-table").replaceChildren(...rows);
  document.getElementById("top-label").textContent = topLabel(h.counts) || "–";
  const neg = h.total ? negativeShare(h.shares) : null;
  document.getElementById("negative-share").textContent = pct(neg);
  checkAlert(neg);
}

/** Alert when the negative share stays at or above the threshold for alert_after_s seconds. */
function checkAlert(neg) {
  const now = Date.now() / 1000;
  if (neg === null || neg < config.alert_negative_share) { state.highSince = null; state.alerted = false; return; }
  if (state.highSince === null) state.highSince = now;
  if (!state.alerted && now - state.highSince >= config.alert_after_s) {
    state.alerted = true;
    const text = `${new Date().toLocaleTimeString()}: ${pct(neg)} of faces look angry, disgusted, afraid or sad ` +
      `for over ${Math.round(config.alert_after_s)} s. Maybe check in with the class.`;
    document.getElementById("alerts").prepend(el("li", { class: "alert" }, text));
  }
}

function bucketSeconds() {
  const started = state.session && state.session.started_at ? Date.parse(state.session.started_at) : Date.now();
  const minutes = (Date.now() - started) / 60000;
  // Aim at 10 to 60 buckets so the area chart has a shape from the first minutes on.
  return minutes < 2 ? 5 : minutes < 10 ? 15 : minutes < 60 ? 60 : 300;
}

async function refreshTimeline() {
  const s = state.session;
  const since = s && s.started_at ? `&since=${Date.parse(s.started_at) / 1000}` : "";
  const t = await api("GET", `/api/sessions/${sid}/timeline?bucket_s=${bucketSeconds()}${since}`);
  const xs = t.buckets.map((b) => new Date(b.start * 1000));
  // An area needs two points to be seen: the first bucket of a session is drawn as a bar.
  const kind = t.buckets.length < 2 ? "bar" : "area";
  plot("timeline", stackedTraces(xs, t.buckets.map((b) => b.shares), kind),
    { barmode: "stack", yaxis: { tickformat: ".0%", range: [0, 1] }, xaxis: { type: "date" } });
}

function tileFor(pid, name) {
  let tile = state.tiles.get(pid);
  if (!tile) {
    tile = el("div", { class: "tile", "data-participant-id": pid },
      el("div", { class: "name" }, name || "student"), el("div", { class: "state" }, "no face yet"),
      el("div", { class: "small muted when" }, ""));
    state.tiles.set(pid, tile);
    document.getElementById("tiles").append(tile);
  }
  return tile;
}

function updateTile(pid, name, label, ts) {
  const tile = tileFor(pid, name);
  if (name) tile.querySelector(".name").textContent = name;
  if (label) {
    tile.querySelector(".state").textContent = label;
    tile.dataset.label = label;
    tile.style.borderLeftColor = config.colors[label] || "";
  }
  if (ts) { tile.dataset.ts = ts; tile.querySelector(".when").textContent = fmtTime(ts); }
  tile.classList.remove("away");
}

async function loadParticipants() {
  try {
    const list = await api("GET", `/api/sessions/${sid}/participants`);
    for (const p of list) updateTile(p.participant_id, p.display_name, p.now_label || p.last_label, p.last_ts);
    markAway();
  } catch (err) {
    if (err.status === 403) { show(document.getElementById("tiles"), false); show(document.getElementById("tiles-note")); }
    else throw err;
  }
}

function markAway() {
  const now = Date.now() / 1000;
  for (const tile of state.tiles.values()) {
    const ts = Number(tile.dataset.ts || 0);
    tile.classList.toggle("away", !ts || now - ts > AWAY_AFTER_S);
  }
}

const histSoon = throttle("hist", 700, () => refreshHistogram().catch(showError));
const timelineSoon = throttle("timeline", 3000, () => refreshTimeline().catch(showError));
const participantsSoon = throttle("participants", 1000, () => loadParticipants().catch(showError));

function connectLive() {
  const conn = document.getElementById("conn");
  const source = new EventSource(`/api/sessions/${sid}/live`, { withCredentials: true });
  source.onopen = () => { conn.textContent = "live updates"; conn.className = "pill small live"; };
  source.onerror = () => { conn.textContent = "reconnecting…"; conn.className = "pill small bad"; };
  source.addEventListener("observation", (e) => {
    const o = JSON.parse(e.data);
    // The event carries the raw label: the tile shows the steadied one, read from the server (throttled).
    if (!state.aggregateOnly) { updateTile(o.participant_id, o.display_name, null, o.ts); participantsSoon(); }
    histSoon();
    timelineSoon();
  });
  source.addEventListener("presence", (e) => {
    const p = JSON.parse(e.data);
    document.getElementById("present").textContent = p.present;
    document.getElementById("faces").textContent = p.faces_visible;
    if (!state.aggregateOnly) loadParticipants().catch(showError); // a new student gets a tile at once
  });
  source.addEventListener("status", (e) => {
    const s = JSON.parse(e.data);
    renderSession(Object.assign({}, state.session, s));
    if (s.status === "ended") closeLive(source);
  });
  return source;
}

function closeLive(source) {
  // An ended session has no more events: stop the browser's automatic reconnects.
  if (source) source.close();
  const conn = document.getElementById("conn");
  conn.textContent = "session ended";
  conn.className = "pill small ended";
}

async function act(what) {
  try {
    renderSession(await api("POST", `/api/sessions/${sid}/${what}`));
    if (state.session.status === "ended") closeLive(state.source);
    else if (!state.source) state.source = connectLive();
  } catch (err) { showError(err); }
}

async function patch(field, value) {
  try { renderSession(await api("PATCH", `/api/sessions/${sid}`, { [field]: value })); } catch (err) { showError(err); }
}

/** The alert rule: the server's defaults, overridden by the teacher's choice kept in this browser. */
function wireAlertRule() {
  const share = document.getElementById("alert-share");
  const after = document.getElementById("alert-after");
  const saved = JSON.parse(localStorage.getItem("cm-alert-rule") || "null");
  if (saved) Object.assign(config, saved);
  share.value = Math.round(100 * config.alert_negative_share);
  after.value = Math.round(config.alert_after_s);
  const apply = () => {
    const s = Number(share.value);
    const a = Number(after.value);
    if (!(s >= 1 && s <= 100 && a >= 1)) return; // keep the last valid rule while the teacher types
    config.alert_negative_share = s / 100;
    config.alert_after_s = a;
    state.highSince = null;
    state.alerted = false;
    localStorage.setItem("cm-alert-rule", JSON.stringify({ alert_negative_share: s / 100, alert_after_s: a }));
  };
  share.addEventListener("change", apply);
  after.addEventListener("change", apply);
  document.getElementById("alert-form").addEventListener("submit", (e) => { e.preventDefault(); apply(); });
}

function wireControls() {
  wireAlertRule();
  document.getElementById("window-s").textContent = Math.round(config.live_window_s);
  document.getElementById("report-link").href = `/teacher/sessions/${sid}/report`;
  document.getElementById("start-session").addEventListener("click", () => act("start"));
  document.getElementById("end-session").addEventListener("click", () => act("end"));
  document.getElementById("aggregate-only").addEventListener("change", (e) => patch("aggregate_only", e.target.checked));
  document.getElementById("show-self").addEventListener("change", (e) => patch("show_self_to_students", e.target.checked));
  document.getElementById("analysis-device").addEventListener("change",
    (e) => patch("analysis_mode", e.target.checked ? "device" : "server"));
  document.getElementById("allow-fallback").addEventListener("change",
    (e) => patch("allow_server_fallback", e.target.checked));
  const copy = document.getElementById("copy-link");
  copy.addEventListener("click", async () => {
    const text = document.getElementById("join-url").textContent;
    try { await navigator.clipboard.writeText(text); } catch (_) { /* insecure context: the link is visible */ }
    document.getElementById("copy-done").textContent = "Link copied";
    setTimeout(() => { document.getElementById("copy-done").textContent = ""; }, 2000);
  });
}

document.addEventListener("DOMContentLoaded", async () => {
  wireControls();
  try {
    await whoami();
    renderSession(await api("GET", `/api/sessions/${sid}`));
    await Promise.all([refreshHistogram(), refreshTimeline()]);
    if (state.session.status === "ended") closeLive(null); else state.source = connectLive();
    // Without events the "last N seconds" window must still move on, and tiles must grey out.
    setInterval(() => { histSoon(); markAway(); }, 3000);
    setInterval(timelineSoon, 15000);
  } catch (err) { if (err.status !== 401) showError(err); }
});
