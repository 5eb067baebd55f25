/*
 * Student page: explanation and consent, then the camera. In on-device mode (the default) local_analysis.js
 * analyses each picture in this browser and only its scores leave it, kept in the outbox (outbox.js) until the
 * server acknowledged them. In server mode, or as the teacher's allowed fallback, small frames go to the server.
 * delivery.js carries both; camera.js holds the camera.
 */

import { Camera, wirePreviewSwitch } from "./camera.js";
import { FrameSender, ScoreDelivery } from "./delivery.js";
import { loadLocalAnalysis } from "./local_analysis.js";
import { openOutbox } from "./outbox.js";

import { api, config, onSubmit, show, uuid } from "./common.js";
import { deleteOwnData, showOwnLabel } from "./own_timeline.js";
const code = config.code;
const FRAME_WIDTH = 320; // frames are downscaled before they leave the device: faces need no more

const st = {
  info: null, join: null, camera: null, paused: false, leaving: false, ended: false,
  sent: 0, acked: 0, resent: 0, dropped: 0, noFace: 0, labels: [], mode: "server", outbox: null,
  frames: null, // server mode: FrameSender
  scores: null, // the outbox's delivery (on-device scores, and those an earlier visit left)
  local: null, // on-device mode: LocalAnalysis
  get pending() { return st.frames ? st.frames.pending : new Map(); },
  get ws() { return st.frames ? st.frames.stream.ws : null; },
  get offline() { return Boolean(st.scores && st.scores.offline); },
  get timer() { return st.camera ? st.camera.timer : null; },
  get pipeline() { return st.local && st.local.pipeline; },
  get frameMs() { return st.local ? st.local.frameMs : []; },
  get busy() { return Boolean(st.local && st.local.busy); },
};
window.cmStudent = st; // read by the browser tests and handy in the devtools console
const $ = (id) => document.getElementById(id);

function counters() {
  $("sent").textContent = st.sent;
  $("acked").textContent = st.acked;
  $("queued").textContent = st.mode === "device" && st.outbox ? st.outbox.size() : st.pending.size;
}

function setConn(text, cls) { const c = $("conn"); c.textContent = text; c.className = "pill " + (cls || ""); }

function fail(message) { $("join-error").textContent = message; show($("join-error")); }

const joinInfo = () => api("GET", `/api/join/${encodeURIComponent(code)}`, undefined, { noRedirect: true });

async function loadInfo() {
  try {
    st.info = await joinInfo();
  } catch (err) {
    $("session-title").textContent = "Class not found";
    fail(err.status === 404 ? "No class has this join code. Please check the link or the code with your teacher."
      : "Could not load the class: " + err.message);
    show($("consent-card"), false);
    return;
  }
  const i = st.info;
  $("session-title").textContent = i.title;
  document.title = i.title + " · ClassMood";
  $("interval-text").textContent = i.frame_interval_s;
  if (i.aggregate_only) $("mode-text").textContent = "but not you individually: only the class as a whole is shown";
  show($("self-text"), Boolean(i.show_self_to_students));
  st.mode = i.analysis_mode === "device" ? "device" : "server";
  show($("device-text"), st.mode === "device");
  show($("server-text"), st.mode === "server");
  show($("fallback-text"), st.mode === "device" && Boolean(i.allow_server_fallback));
  if (st.mode === "device") { $("sent-label").textContent = "Scores computed here"; $("acked-label").textContent = "delivered"; }
  st.outbox = await openOutbox();
  st.scores = new ScoreDelivery({ outbox: st.outbox, join: null, closeCodes: config.close_codes, stats: st, uuid,
    post: (path, body, token) => api("POST", path, body, { token, noRedirect: true }), ui: deliveryUi() });
  if (st.outbox.size()) st.scores.schedule(0); // samples of an earlier visit of this page that were not delivered
  if (i.status === "ended") {
    fail("This class session has ended. Thank you!");
    show($("consent-form"), false);
  }
}

/** What delivery.js tells this page. */
function deliveryUi() {
  return {
    conn: setConn, changed: counters, ended: endOfClass,
    online: () => { if (st.camera.on) setConn("analysing on this device", "live"); },
    label: (label) => { st.labels.push(label); addOwn(label); },
    invalid: () => { // the token is no longer accepted: reconnecting cannot help, joining again can
      stopCamera();
      setConn("disconnected", "bad");
      fail("Your place in this class is no longer valid. Reload the page to join again.");
      st.ended = true;
    },
    stillLive: async () => {
      try { return (await joinInfo()).status !== "ended"; } catch (_) { return true; } // unreachable: keep trying
    },
  };
}

function canStart() { return $("consent").checked && $("display-name").value.trim().length > 0; }

async function onConsent() {
  if (!canStart()) { fail("Please enter your name and tick the consent box, or keep your camera off."); return; }
  show($("join-error"), false);
  $("start").disabled = true;
  try {
    st.join = await api("POST", "/api/join", { code, display_name: $("display-name").value.trim(), consent: true },
      { noRedirect: true });
  } catch (err) {
    fail(err.status === 409 ? "This class session has ended." : "Could not join: " + err.message);
    $("start").disabled = !canStart();
    return;
  }
  show($("consent-card"), false);
  show($("camera-card"));
  show($("own-card"), Boolean(st.info.show_self_to_students));
  if (st.mode === "device") { await startOnDevice(); return; }
  await startServerMode();
}

async function startServerMode() {
  st.mode = "server";
  st.frames = new FrameSender(st.join, config.close_codes, st, deliveryUi());
  st.frames.start();
  await startCamera(capture);
}

async function startCamera(tick) {
  // on the device, the pipeline's search settings say the camera's rate; in server mode, the page config (the same
  // shipped number)
  const fps = st.mode === "device" && st.local ? st.local.cameraFps : config.camera_fps;
  try {
    await st.camera.start(() => st.paused || tick(), st.info.frame_interval_s, fps);
  } catch (err) {
    fail("The camera could not start (" + err.name + "). Allow the camera for this page and try again.");
  }
}

const stopCamera = () => st.camera.stop();

/** Server mode: the current picture as a small JPEG, queued for the server. */
function capture() {
  const picture = st.camera.grab(FRAME_WIDTH);
  if (!picture) return;
  const image = picture.canvas.toDataURL("image/jpeg", 0.8).split(",")[1];
  st.frames.add({ id: uuid(), ts: Date.now() / 1000, image });
  counters();
}

// ---- on-device analysis ----------------------------------------------------------------------------------

/** Load the model and start the camera; a browser that cannot do it falls back (if allowed) or stops. */
async function startOnDevice() {
  setConn("loading the model…");
  const fetchConfig = () => api("GET", "/api/ondevice/config", undefined, { noRedirect: true });
  try {
    st.local = await loadLocalAnalysis($("student").dataset.ondevice, fetchConfig, {
      camera: st.camera, outbox: st.outbox, join: st.join, delivery: st.scores, stats: st, face: addOwn,
      changed: counters,
      tooSlow: (median) => { stopCamera(); cannotAnalyse(`it needs ${Math.round(median)} ms per picture`); },
    });
  } catch (err) { cannotAnalyse(err.message); return; }
  await startCamera(analyseFrame);
  if (!st.camera.on) return;
  setConn("analysing on this device", "live");
  st.scores.connect(st.join);
}

const analyseFrame = () => st.local.tick();

function cannotAnalyse(reason) {
  st.scores.stop();
  if (st.info.allow_server_fallback) {
    fail(`Your browser cannot analyse the picture on this device: ${reason}. Your teacher allows analysis on ` +
      "the server instead, so small pictures are now sent to the server, analysed and thrown away.");
    startServerMode();
    return;
  }
  fail(`Your browser cannot analyse the picture on this device: ${reason}. Your teacher does not allow ` +
    "sending pictures to the server, so your camera stays off. Try a recent Chrome, Edge, Firefox or Safari.");
  stopCamera();
  setConn("not measured", "bad");
}

// ---- the page ------------------------------------------------------------------------------------------------

const addOwn = (label) => showOwnLabel(st.join.token, st.info, label);

async function togglePause() {
  st.paused = !st.paused;
  $("pause").setAttribute("aria-pressed", String(st.paused));
  $("pause").textContent = st.paused ? "Resume camera" : "Pause camera";
  show($("paused-note"), st.paused);
  if (st.paused) stopCamera(); else await startCamera(st.mode === "device" ? analyseFrame : capture);
}

function endOfClass() {
  st.ended = true;
  stopCamera();
  if (st.frames) st.frames.stop();
  if (st.scores) st.scores.stop();
  setConn("class ended", "ended");
  $("pause").disabled = true;
}

const pause = (ms) => new Promise((r) => setTimeout(r, ms));

async function leave() {
  st.leaving = true;
  stopCamera();
  // Give queued samples a moment to be acknowledged before closing; what cannot go now stays in IndexedDB.
  for (let i = 0; i < 20 && st.pending.size && st.frames.stream.isOpen; i += 1) await pause(150);
  if (st.mode === "device") {
    await st.scores.flush();
    for (let i = 0; i < 20 && st.scores.inflight.size && st.scores.streaming; i += 1) await pause(150);
  }
  if (st.frames) st.frames.stop();
  st.scores.stop();
  show($("camera-card"), false);
  show($("left"));
}

async function deleteData() {
  if (!confirm("Delete every expression stored about you in this session?")) return;
  try {
    await deleteOwnData(st.join.token);
    alert("Your data in this session was deleted.");
  } catch (err) { fail("Could not delete: " + err.message); }
}

async function main() {
  st.camera = new Camera($("preview"));
  const update = () => { $("start").disabled = !canStart(); };
  $("consent").addEventListener("change", update);
  $("display-name").addEventListener("input", update);
  onSubmit($("consent-form"), onConsent); // its button follows the consent rule (canStart), not the script
  $("decline").addEventListener("click", () => { show($("consent-form"), false); show($("declined")); });
  $("pause").addEventListener("click", togglePause);
  wirePreviewSwitch($("hide-preview"), $("preview"), $("preview-note"));
  $("leave").addEventListener("click", leave);
  $("delete-data").addEventListener("click", deleteData);
  window.addEventListener("online", () => { if (st.scores) st.scores.schedule(0); });
  await loadInfo();
}

main(); // a module runs after the document is parsed, like a deferred script
