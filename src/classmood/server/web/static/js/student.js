/* Student page: explanation and consent, then camera frames over a WebSocket with an acknowledged queue. */
"use strict";

(() => {
  const { api, el, show, config } = CM;
  const code = config.code;
  const CLOSE = config.close_codes; // the server's stream close codes (observations/stream.py CloseCode)
  const FRAME_WIDTH = 320; // frames are downscaled before they leave the device: faces need no more
  const MAX_QUEUE = 300; // unacknowledged frames kept while offline (about 5 min at 1 frame/s)
  const BACKOFF_MAX_MS = 15000;

  const st = {
    info: null, join: null, ws: null, stream: null, timer: null, paused: false, leaving: false, ended: false,
    pending: new Map(), // id -> message, in capture order; removed on ack (re-sent after a reconnect)
    sent: 0, acked: 0, resent: 0, dropped: 0, attempt: 0, reconnectTimer: null, own: [], labels: [],
  };
  window.cmStudent = st; // read by the browser tests and handy in the devtools console
  const $ = (id) => document.getElementById(id);

  function counters() {
    $("sent").textContent = st.sent;
    $("acked").textContent = st.acked;
    $("queued").textContent = st.pending.size;
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
    connect();
    await startCamera();
  }

  async function startCamera() {
    try {
      st.stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } },
        audio: false });
    } catch (err) {
      fail("The camera could not start (" + err.name + "). Allow the camera for this page and try again.");
      return;
    }
    $("preview").srcObject = st.stream;
    st.timer = setInterval(capture, Math.max(0.2, st.info.frame_interval_s) * 1000);
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

  function connect() {
    if (st.leaving || st.ended) return;
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const url = `${proto}://${location.host}/api/sessions/${st.join.session_id}/stream?token=` +
      encodeURIComponent(st.join.token);
    const ws = new WebSocket(url);
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
    if (st.paused) stopCamera(); else await startCamera();
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
    await loadInfo();
  });
})();
