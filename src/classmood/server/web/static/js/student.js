/*
 * Student page: explanation and consent, then the camera. In on-device mode (the default) ondevice.js analyses
 * each picture in this browser and only scores leave it, kept in IndexedDB until acknowledged (they survive a
 * reload and an unreachable server): as {type: "scores"} batches on the student stream (one WebSocket, one
 * answer per batch after the server's COMMIT) while it is open, else through POST .../observations; both paths
 * are idempotent by score id, so a batch sent again after a reconnect is stored once. In server mode, or as the
 * teacher's allowed fallback, frames go over the same WebSocket with an acknowledged queue.
 */
"use strict";

(() => {
  const { api, el, show, config } = CM;
  const code = config.code;
  const CLOSE = config.close_codes; // the server's stream close codes (observations/stream.py CloseCode)
  const FRAME_WIDTH = 320; // frames are downscaled before they leave the device: faces need no more
  const MAX_QUEUE = 300; // unacknowledged frames kept while offline (about 5 min at 1 frame/s)
  const BACKOFF_MAX_MS = 15000;
  const BATCH = 100; // scores per request (the server takes up to batch_max)
  const DEVICE_FRAME_WIDTH = 640; // on-device analysis reads the camera at up to this width

  const st = {
    info: null, join: null, ws: null, stream: null, timer: null, paused: false, leaving: false, ended: false,
    pending: new Map(), // id -> message, in capture order; removed on ack (re-sent after a reconnect)
    sent: 0, acked: 0, resent: 0, dropped: 0, attempt: 0, reconnectTimer: null, own: [], labels: [],
    // on-device mode
    mode: "server", pipeline: null, busy: false, frameMs: [], skipped: 0, outbox: null, flushing: false,
    flushTimer: null, offline: false, shed: 0,
    scoreWs: null, wsAttempt: 0, wsTimer: null, // the stream carrying score batches
    inflight: new Map(), inflightIds: new Set(), // batch name -> score ids sent on the stream, not yet answered
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

  async function loadInfo() {
    try {
      st.info = await api("GET", `/api/join/${encodeURIComponent(code)}`, undefined, { noRedirect: true });
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
    if (i.aggregate_only) {
      $("mode-text").textContent = "but not you individually: only the class as a whole is shown";
    }
    show($("self-text"), Boolean(i.show_self_to_students));
    st.mode = i.analysis_mode === "device" ? "device" : "server";
    show($("device-text"), st.mode === "device");
    show($("server-text"), st.mode === "server");
    show($("fallback-text"), st.mode === "device" && Boolean(i.allow_server_fallback));
    if (st.mode === "device") { $("sent-label").textContent = "Scores computed here"; $("acked-label").textContent = "delivered"; }
    st.outbox = await Outbox.open();
    if (st.outbox.size()) scheduleFlush(0); // scores of an earlier visit of this page that were not delivered
    if (i.status === "ended") {
      fail("This class session has ended. Thank you!");
      show($("consent-form"), false);
    }
  }

  function canStart() { return $("consent").checked && $("display-name").value.trim().length > 0; }

  async function onConsent(event) {
    event.preventDefault();
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
    connect();
    await startCamera();
  }

  async function startCamera(tick = capture) {
    try {
      st.stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } },
        audio: false });
    } catch (err) {
      fail("The camera could not start (" + err.name + "). Allow the camera for this page and try again.");
      return;
    }
    $("preview").srcObject = st.stream;
    st.timer = setInterval(tick, Math.max(0.2, st.info.frame_interval_s) * 1000);
  }

  function stopCamera() {
    clearInterval(st.timer);
    st.timer = null;
    if (st.stream) st.stream.getTracks().forEach((t) => t.stop()); // the camera light goes off
    st.stream = null;
    $("preview").srcObject = null;
  }

  /** Grab the current preview picture as a small JPEG and queue it for sending. */
  function capture() {
    const video = $("preview");
    if (st.paused || !video.videoWidth) return;
    const canvas = document.createElement("canvas");
    canvas.width = Math.min(FRAME_WIDTH, video.videoWidth);
    canvas.height = Math.round(canvas.width * video.videoHeight / video.videoWidth);
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    const image = canvas.toDataURL("image/jpeg", 0.8).split(",")[1];
    const msg = { id: CM.uuid(), ts: Date.now() / 1000, image };
    st.pending.set(msg.id, msg);
    if (st.pending.size > MAX_QUEUE) { st.pending.delete(st.pending.keys().next().value); st.dropped += 1; }
    st.sent += 1;
    send(msg);
    counters();
  }

  function send(msg) {
    if (st.ws && st.ws.readyState === WebSocket.OPEN) st.ws.send(JSON.stringify(msg));
  }

  function streamUrl() {
    const proto = location.protocol === "https:" ? "wss" : "ws";
    return `${proto}://${location.host}/api/sessions/${st.join.session_id}/stream?token=` +
      encodeURIComponent(st.join.token);
  }

  function connect() {
    if (st.leaving || st.ended) return;
    const ws = new WebSocket(streamUrl());
    st.ws = ws;
    setConn(st.attempt ? "reconnecting…" : "connecting…");
    ws.onopen = () => {
      st.attempt = 0;
      setConn("connected", "live");
      // Everything not yet acknowledged goes again, oldest first; the server drops ids it already has.
      for (const msg of st.pending.values()) { st.resent += 1; ws.send(JSON.stringify(msg)); }
    };
    ws.onmessage = (event) => onReply(JSON.parse(event.data));
    ws.onclose = (event) => {
      if (st.ws !== ws) return;
      if (event.code === CLOSE.session_over) { endOfClass(); return; }
      if (event.code === CLOSE.unauthorized || event.code === CLOSE.forbidden) {
        // The token is no longer accepted: reconnecting cannot help, joining again can.
        stopCamera();
        setConn("disconnected", "bad");
        fail("Your place in this class is no longer valid. Reload the page to join again.");
        st.ended = true;
        return;
      }
      scheduleReconnect();
    };
  }

  async function scheduleReconnect() {
    if (st.leaving || st.ended) return;
    setConn("offline: frames are kept and sent later", "bad");
    try {
      const info = await api("GET", `/api/join/${encodeURIComponent(code)}`, undefined, { noRedirect: true });
      if (info.status === "ended") { endOfClass(); return; }
    } catch (_) { /* server unreachable: keep trying */ }
    const delay = Math.min(BACKOFF_MAX_MS, 500 * 2 ** st.attempt) * (0.75 + Math.random() / 2);
    st.attempt += 1;
    clearTimeout(st.reconnectTimer);
    st.reconnectTimer = setTimeout(connect, delay);
  }

  function onReply(reply) {
    if (!reply) return;
    if (reply.type === "error") {
      if (reply.status === 409) { endOfClass(); return; }
      if (!reply.id) { console.warn("stream error", reply.detail); return; }
      const msg = st.pending.get(reply.id);
      if (msg && (reply.status === 429 || reply.status >= 500)) {
        // Busy server: the frame stays queued and goes again a little later; nothing is lost.
        setTimeout(() => { if (st.pending.has(msg.id)) send(msg); }, 2000);
        return;
      }
      // Any other refusal (a broken image) would be refused again: drop it.
      console.warn("frame refused", reply.id, reply.detail);
    }
    if (st.pending.delete(reply.id) && reply.type === "ack") st.acked += 1;
    if (reply.type === "ack" && reply.label && !reply.duplicate) { st.labels.push(reply.label); addOwn(reply.label); }
    counters();
  }

  // ---- on-device analysis ----------------------------------------------------------------------------------

  /** Load the model and start the camera; a browser that cannot do it falls back (if allowed) or stops. */
  async function startOnDevice() {
    setConn("loading the model…");
    const od = await import($("student").dataset.ondevice);
    if (!od.supported()) { cannotAnalyse("this browser has no WebAssembly with SIMD"); return; }
    try {
      st.odConfig = await api("GET", "/api/ondevice/config", undefined, { noRedirect: true });
      if (!st.odConfig.runtime.available) throw new Error("the server has no in-browser runtime installed");
      st.pipeline = await od.createPipeline(st.odConfig);
    } catch (err) { cannotAnalyse("the model could not load (" + err.message + ")"); return; }
    await startCamera(analyseFrame);
    if (!st.stream) return;
    setConn("analysing on this device", "live");
    openScoreStream();
  }

  function cannotAnalyse(reason) {
    closeScoreStream();
    if (st.info.allow_server_fallback) {
      fail(`Your browser cannot analyse the picture on this device: ${reason}. Your teacher allows analysis on ` +
        "the server instead, so small pictures are now sent to the server, analysed and thrown away.");
      st.mode = "server";
      connect();
      startCamera(capture);
      return;
    }
    fail(`Your browser cannot analyse the picture on this device: ${reason}. Your teacher does not allow ` +
      "sending pictures to the server, so your camera stays off. Try a recent Chrome, Edge, Firefox or Safari.");
    stopCamera();
    setConn("not measured", "bad");
  }

  /** Analyse the current camera picture here; only its scores are queued. A busy device skips a tick. */
  async function analyseFrame() {
    const video = $("preview");
    if (st.paused || st.busy || !video.videoWidth || !st.pipeline) { if (st.busy) st.skipped += 1; return; }
    st.busy = true;
    try {
      const width = Math.min(DEVICE_FRAME_WIDTH, video.videoWidth);
      const height = Math.round(width * video.videoHeight / video.videoWidth);
      const canvas = st.canvas || (st.canvas = document.createElement("canvas"));
      canvas.width = width; canvas.height = height;
      const ctx = canvas.getContext("2d", { willReadFrequently: true });
      ctx.drawImage(video, 0, 0, width, height);
      const ts = Date.now() / 1000;
      const started = performance.now();
      const faces = await st.pipeline.analyse(ctx.getImageData(0, 0, width, height).data, width, height);
      st.frameMs.push(performance.now() - started);
      if (tooSlow()) return;
      const labels = st.pipeline.labels;
      const batch = faces.map((f) => ({ id: CM.uuid(), ts, score: f.score,
        probs: Object.fromEntries(labels.map((l, k) => [l, f.probs[k]])) }));
      if (batch.length) {
        await st.outbox.add(st.join.session_id, st.join.token, batch);
        st.sent += batch.length;
        addOwn(faces[0].label);
        if (!st.offline) scheduleFlush(0); // offline: the backoff timer tries again
      }
      counters();
    } catch (err) {
      console.warn("on-device analysis failed", err);
    } finally { st.busy = false; }
  }

  /** After a few frames: a device far slower than the class's pace cannot take part this way. */
  function tooSlow() {
    if (st.frameMs.length < 3 || st.frameMs.length > 5) return false;
    const sorted = [...st.frameMs].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)];
    if (median <= st.odConfig.max_frame_ms) return false;
    st.pipeline = null;
    stopCamera();
    cannotAnalyse(`it needs ${Math.round(median)} ms per picture`);
    return true;
  }

  function scheduleFlush(delay) {
    clearTimeout(st.flushTimer);
    st.flushTimer = setTimeout(flush, delay);
  }

  // ---- score delivery: the stream while it is open, HTTP otherwise ------------------------------------------

  /** Open the student stream for score batches; a closed one is opened again with a backoff. */
  function openScoreStream() {
    if (st.leaving || st.ended || !st.join || st.mode !== "device") return;
    const ws = new WebSocket(streamUrl());
    st.scoreWs = ws;
    ws.onopen = () => { st.wsAttempt = 0; scheduleFlush(0); };
    ws.onmessage = (event) => onScoresReply(JSON.parse(event.data));
    ws.onclose = (event) => {
      if (st.scoreWs !== ws) return;
      st.scoreWs = null;
      // Unanswered batches are still in the outbox: they go again (stream or HTTP), stored once by their ids.
      st.inflight.clear(); st.inflightIds.clear();
      if (event.code === CLOSE.session_over) { endOfClass(); return; }
      if (event.code === CLOSE.unauthorized || event.code === CLOSE.forbidden) return; // HTTP says why
      if (!st.offline) scheduleFlush(0); // HTTP meanwhile: it notices an unreachable server and backs off
      const delay = Math.min(BACKOFF_MAX_MS, 500 * 2 ** st.wsAttempt) * (0.75 + Math.random() / 2);
      st.wsAttempt += 1;
      clearTimeout(st.wsTimer);
      st.wsTimer = setTimeout(openScoreStream, delay);
    };
  }

  function closeScoreStream() {
    const ws = st.scoreWs;
    st.scoreWs = null;
    clearTimeout(st.wsTimer);
    st.inflight.clear(); st.inflightIds.clear();
    if (ws) ws.close(1000, "left");
  }

  function streamOpen() { return Boolean(st.scoreWs && st.scoreWs.readyState === WebSocket.OPEN); }

  /** Scores of this page's own join can go on its stream; those of an earlier visit have another token. */
  function ownScore(item) {
    return Boolean(st.join) && item.sid === st.join.session_id && item.token === st.join.token;
  }

  function deliveredAgain() {
    if (st.offline || st.attempt) {
      st.offline = false; st.attempt = 0;
      if (st.stream) setConn("analysing on this device", "live");
    }
  }

  /** One batch message per BATCH queued scores not yet on their way; each answer removes its scores. */
  function sendOnStream() {
    const waiting = (item) => ownScore(item) && !st.inflightIds.has(item.obs.id);
    for (let items = st.outbox.oldest(BATCH, waiting); items.length; items = st.outbox.oldest(BATCH, waiting)) {
      const batch = CM.uuid();
      const ids = items.map((i) => i.obs.id);
      st.inflight.set(batch, ids);
      ids.forEach((id) => st.inflightIds.add(id));
      st.scoreWs.send(JSON.stringify({ type: "scores", batch, observations: items.map((i) => i.obs) }));
    }
  }

  async function onScoresReply(reply) {
    const ids = reply && st.inflight.get(reply.batch);
    if (!ids) return; // not a batch answer, or one of a batch already given up (the stream closed)
    const settle = () => { st.inflight.delete(reply.batch); ids.forEach((id) => st.inflightIds.delete(id)); };
    if (reply.type === "scores_ack") {
      await st.outbox.remove(ids); // first out of IndexedDB, then out of flight: never sent again after this
      settle();
      st.acked += ids.length;
      deliveredAgain();
      counters();
      return;
    }
    settle();
    if (reply.status === 429 || reply.status >= 500) { scheduleFlush(2000); return; } // busy: kept, sent later
    // Refused for good (a time outside the class, bad values, the class ended): sending again cannot help.
    console.warn("scores refused", reply.status, reply.detail);
    st.dropped += ids.length;
    await st.outbox.remove(ids);
    if (reply.status === 409) endOfClass();
    counters();
  }

  /** Send queued scores, oldest first; each is deleted from IndexedDB once the server acknowledged it. */
  async function flush() {
    if (st.flushing || !st.outbox) return;
    st.flushing = true;
    try {
      const onStream = streamOpen();
      if (onStream) sendOnStream();
      // HTTP for the rest: everything while the stream is closed, and scores of an earlier visit.
      const viaHttp = (item) => !st.inflightIds.has(item.obs.id) && !(onStream && ownScore(item));
      for (let items = st.outbox.oldest(BATCH, viaHttp); items.length; items = st.outbox.oldest(BATCH, viaHttp)) {
        const { sid, token } = items[0];
        const same = items.filter((i) => i.sid === sid && i.token === token);
        let reply;
        try {
          reply = await api("POST", `/api/sessions/${sid}/observations`, { observations: same.map((i) => i.obs) },
            { token, noRedirect: true });
        } catch (err) {
          if (err.status === undefined || err.status === 429 || err.status >= 500) { // offline or busy: later
            st.offline = true;
            setConn("offline: scores are kept on this device and sent later", "bad");
            st.attempt += 1;
            scheduleFlush(Math.min(BACKOFF_MAX_MS, 500 * 2 ** st.attempt) * (0.75 + Math.random() / 2));
            return;
          }
          // Refused for good (the class ended, the token expired, a time outside the class): sending again
          // cannot help, so these scores are dropped, and an ended class stops the camera.
          console.warn("scores refused", err.status, err.message);
          st.dropped += same.length;
          await st.outbox.remove(same.map((i) => i.obs.id));
          if (err.status === 409 && st.join && sid === st.join.session_id) endOfClass();
          continue;
        }
        st.acked += reply.accepted + reply.duplicates;
        await st.outbox.remove(same.map((i) => i.obs.id));
        deliveredAgain();
        counters();
        if (streamOpen() && !onStream) break; // the stream is back: it takes the rest
      }
    } finally { st.flushing = false; counters(); }
  }

  /** Scores waiting for the server: in memory for speed, in IndexedDB so that a reload or a crash loses none. */
  const Outbox = {
    async open() {
      const items = new Map();
      let db = null;
      try {
        db = await new Promise((resolve, reject) => {
          const req = indexedDB.open("classmood", 1);
          req.onupgradeneeded = () => req.result.createObjectStore("outbox", { keyPath: "obs.id" });
          req.onsuccess = () => resolve(req.result);
          req.onerror = () => reject(req.error);
        });
        const all = await done(db.transaction("outbox").objectStore("outbox").getAll());
        all.sort((a, b) => a.obs.ts - b.obs.ts).forEach((i) => items.set(i.obs.id, i));
      } catch (err) { console.warn("IndexedDB unavailable: scores are kept in memory only", err); db = null; }
      const write = (fn) => db ? new Promise((resolve, reject) => {
        const tx = db.transaction("outbox", "readwrite");
        fn(tx.objectStore("outbox"));
        tx.oncomplete = resolve; tx.onerror = () => reject(tx.error);
      }) : Promise.resolve();
      return {
        size: () => items.size,
        oldest(n, keep = () => true) { // the n oldest that ``keep`` accepts
          const out = [];
          for (const item of items.values()) {
            if (out.length >= n) break;
            if (keep(item)) out.push(item);
          }
          return out;
        },
        ids: () => Array.from(items.keys()),
        async add(sid, token, batch) {
          const rows = batch.map((obs) => ({ sid, token, obs }));
          await write((store) => rows.forEach((r) => store.put(r)));
          rows.forEach((r) => items.set(r.obs.id, r));
        },
        async remove(ids) {
          await write((store) => ids.forEach((id) => store.delete(id)));
          ids.forEach((id) => items.delete(id));
        },
      };
    },
  };

  function done(request) {
    return new Promise((resolve, reject) => { request.onsuccess = () => resolve(request.result); request.onerror = () => reject(request.error); });
  }

  function addOwn(label) {
    if (!st.info.show_self_to_students) return;
    st.own.push(label);
    const recent = st.own.slice(-12).reverse();
    $("own-list").replaceChildren(...recent.map((l) => el("li", { style: `border-left:4px solid ${config.colors[l]}` }, l)));
    const counts = {};
    for (const l of st.own) counts[l] = (counts[l] || 0) + 1;
    CM.plot("own-chart", [CM.histogramTrace(counts, false)], { showlegend: false, yaxis: { title: { text: "frames" } } },
      { displayModeBar: false, staticPlot: true });
  }

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
    setConn("class ended", "ended");
    $("pause").disabled = true;
  }

  async function leave() {
    st.leaving = true;
    stopCamera();
    // Give queued frames a moment to be acknowledged before closing.
    for (let i = 0; i < 20 && st.pending.size && st.ws && st.ws.readyState === WebSocket.OPEN; i += 1) {
      await new Promise((r) => setTimeout(r, 150));
    }
    if (st.mode === "device") {
      await flush(); // what cannot go now stays in IndexedDB for the next visit
      for (let i = 0; i < 20 && st.inflight.size && streamOpen(); i += 1) await new Promise((r) => setTimeout(r, 150));
      closeScoreStream();
    }
    if (st.ws) st.ws.close(1000, "left");
    show($("camera-card"), false);
    show($("left"));
  }

  async function deleteData() {
    if (!confirm("Delete every expression stored about you in this session?")) return;
    try {
      await api("DELETE", "/api/me/observations", undefined, { token: st.join.token });
      st.own = [];
      $("own-list").replaceChildren();
      alert("Your data in this session was deleted.");
    } catch (err) { fail("Could not delete: " + err.message); }
  }

  document.addEventListener("DOMContentLoaded", async () => {
    const update = () => { $("start").disabled = !canStart(); };
    $("consent").addEventListener("change", update);
    $("display-name").addEventListener("input", update);
    $("consent-form").addEventListener("submit", onConsent);
    $("decline").addEventListener("click", () => { show($("consent-form"), false); show($("declined")); });
    $("pause").addEventListener("click", togglePause);
    $("leave").addEventListener("click", leave);
    $("delete-data").addEventListener("click", deleteData);
    window.addEventListener("online", () => scheduleFlush(0));
    await loadInfo();
  });
})();
