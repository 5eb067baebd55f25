/*
 * How the student page's samples reach the server. One reconnecting WebSocket, the student stream
 * (observations/stream.py), carries them: frames in server mode, score batches in on-device mode. While it is
 * closed, on-device scores go through POST .../observations instead. Both paths are idempotent by sample id, so
 * whatever is sent again after a reconnect is stored once; a sample leaves the page's queue only when the
 * server answered for it. Every retry waits backoff().
 */

import { backoff } from "./common.js";
import { FACE, NO_FACE, kindOf } from "./outbox.js";

const MAX_FRAMES = 300; // unacknowledged frames kept while offline (about 5 min at 1 frame/s)
const BATCH = 100; // samples per batch (the server takes up to batch_max)
const BUSY_RETRY_MS = 2000; // a busy server (429, 5xx) gets the same samples again after this

/** The URL of the student stream of a join ({session_id, token}). */
export function streamUrl(join) {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  return `${proto}://${location.host}/api/sessions/${join.session_id}/stream?token=${encodeURIComponent(join.token)}`;
}

const busy = (status) => status === undefined || status === 429 || status >= 500; // worth trying again later

/**
 * One WebSocket, opened again after backoff() whenever it closes, until stop(). ``handlers``: opening(attempt)
 * (optional), opened(), message(reply), and closed(code), which says (or resolves to) whether to open it again.
 */
export class Stream {
  constructor(url, handlers) {
    Object.assign(this, { url, handlers, ws: null, attempt: 0, timer: null, stopped: false });
  }

  start() {
    if (this.stopped) return;
    const ws = new WebSocket(this.url);
    this.ws = ws;
    if (this.handlers.opening) this.handlers.opening(this.attempt);
    ws.onopen = () => { this.attempt = 0; this.handlers.opened(); };
    ws.onmessage = (event) => this.handlers.message(JSON.parse(event.data));
    ws.onclose = async (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped || !(await this.handlers.closed(event.code)) || this.stopped) return;
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.start(), backoff(this.attempt));
      this.attempt += 1;
    };
  }

  get isOpen() { return Boolean(this.ws && this.ws.readyState === WebSocket.OPEN); }

  send(message) { if (this.isOpen) this.ws.send(JSON.stringify(message)); }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000, "left");
  }
}

/**
 * Server mode: frames over the stream, each kept (up to MAX_FRAMES) until its ack and sent again, oldest first,
 * after a reconnect. ``ui``: conn(text, cls), ended(), invalid() (the token is no longer accepted), changed(),
 * label(label) (a new reading of this student), and stillLive() (resolves false once the class has ended).
 */
export class FrameSender {
  constructor(join, closeCodes, stats, ui) {
    Object.assign(this, { closeCodes, stats, ui, pending: new Map() }); // id -> frame, in capture order
    this.stream = new Stream(streamUrl(join), {
      opening: (attempt) => this.ui.conn(attempt ? "reconnecting…" : "connecting…"),
      opened: () => this.opened(), message: (reply) => this.onReply(reply), closed: (code) => this.closed(code),
    });
  }

  start() { this.stream.start(); }

  stop() { this.stream.stop(); }

  add(frame) {
    this.pending.set(frame.id, frame);
    if (this.pending.size > MAX_FRAMES) {
      this.pending.delete(this.pending.keys().next().value);
      this.stats.dropped += 1;
    }
    this.stats.sent += 1;
    this.stream.send(frame);
  }

  opened() {
    this.ui.conn("connected", "live");
    // Everything not yet acknowledged goes again; the server answers ids it already has as duplicates.
    for (const frame of this.pending.values()) { this.stats.resent += 1; this.stream.send(frame); }
  }

  async closed(code) {
    if (code === this.closeCodes.session_over) { this.ui.ended(); return false; }
    const { unauthorized, forbidden } = this.closeCodes;
    if (code === unauthorized || code === forbidden) { this.ui.invalid(); return false; }
    this.ui.conn("offline: frames are kept and sent later", "bad");
    if (!(await this.ui.stillLive())) { this.ui.ended(); return false; }
    return true;
  }

  onReply(reply) {
    if (!reply) return;
    if (reply.type === "error") {
      if (reply.status === 409) { this.ui.ended(); return; }
      if (!reply.id) { console.warn("stream error", reply.detail); return; }
      const frame = this.pending.get(reply.id);
      if (frame && busy(reply.status)) { // kept, and sent again a little later: nothing is lost
        setTimeout(() => { if (this.pending.has(frame.id)) this.stream.send(frame); }, BUSY_RETRY_MS);
        return;
      }
      console.warn("frame refused", reply.id, reply.detail); // it would be refused again: dropped
    }
    if (this.pending.delete(reply.id) && reply.type === "ack") this.stats.acked += 1;
    if (reply.type === "ack" && reply.label && !reply.duplicate) this.ui.label(reply.label);
    this.ui.changed();
  }
}

/** The body of a batch: faces as observations, ticks without a face as ``no_face`` samples. */
function batchBody(items) {
  const observations = items.filter((i) => kindOf(i) === FACE).map((i) => i.obs);
  const noFace = items.filter((i) => kindOf(i) === NO_FACE).map((i) => i.obs);
  return noFace.length ? { observations, no_face: noFace } : { observations };
}

const facesIn = (items) => items.filter((i) => kindOf(i) === FACE).length;

/**
 * On-device mode: the outbox's samples as {type: "scores"} batches on the stream while it is open (one answer per
 * batch, after the server's COMMIT), else by HTTP with backoff(); an earlier visit's samples, which have another
 * token, always by HTTP. ``post(path, body, token)`` is the page's API call; ``ui``: conn(text, cls), ended(),
 * changed(), online() (delivering again after an outage).
 */
export class ScoreDelivery {
  constructor({ outbox, join, closeCodes, stats, post, uuid, ui }) {
    Object.assign(this, { outbox, join, closeCodes, stats, post, uuid, ui });
    Object.assign(this, { offline: false, attempt: 0, timer: null, flushing: false, stream: null });
    this.inflight = new Map(); // batch name -> ids sent on the stream, not yet answered
    this.inflightIds = new Set();
  }

  /** Open the stream for this page's own join (until then, and for other joins, HTTP). */
  connect(join) {
    this.join = join;
    this.stream = new Stream(streamUrl(join), {
      opened: () => this.schedule(0), message: (reply) => this.onReply(reply), closed: (code) => this.closed(code),
    });
    this.stream.start();
  }

  schedule(delay) { clearTimeout(this.timer); this.timer = setTimeout(() => this.flush(), delay); }

  /** New samples are in the outbox: send them now, unless a backoff is running (its timer sends them). */
  added() { if (!this.offline) this.schedule(0); }

  forget() { this.inflight.clear(); this.inflightIds.clear(); }

  closed(code) {
    this.forget(); // unanswered batches are still in the outbox: they go again, stored once by their ids
    if (code === this.closeCodes.session_over) { this.ui.ended(); return false; }
    if (code === this.closeCodes.unauthorized || code === this.closeCodes.forbidden) return false; // HTTP says why
    if (!this.offline) this.schedule(0); // HTTP meanwhile: it notices an unreachable server and backs off
    return true;
  }

  /** Close the stream for good; what waits still goes by HTTP. */
  stop() { if (this.stream) this.stream.stop(); this.forget(); }

  get streaming() { return Boolean(this.stream && this.stream.isOpen); }

  /** Samples of this page's own join can go on its stream; those of an earlier visit have another token. */
  own(item) { return Boolean(this.join) && item.sid === this.join.session_id && item.token === this.join.token; }

  delivered(items) {
    this.stats.acked += facesIn(items);
    this.stats.noFace += items.length - facesIn(items);
    if (this.offline || this.attempt) {
      this.offline = false;
      this.attempt = 0;
      this.ui.online();
    }
    this.ui.changed();
  }

  async dropped(items, status, detail) {
    console.warn("samples refused", status, detail); // a time outside the class, bad values, the class ended
    this.stats.dropped += facesIn(items);
    await this.outbox.remove(items.map((i) => i.obs.id));
    this.ui.changed();
  }

  /** One batch message per BATCH samples not yet on their way. */
  sendOnStream() {
    const waiting = (item) => this.own(item) && !this.inflightIds.has(item.obs.id);
    for (let items = this.outbox.oldest(BATCH, waiting); items.length; items = this.outbox.oldest(BATCH, waiting)) {
      const batch = this.uuid();
      this.inflight.set(batch, items);
      items.forEach((i) => this.inflightIds.add(i.obs.id));
      this.stream.send({ type: "scores", batch, ...batchBody(items) });
    }
  }

  async onReply(reply) {
    const items = reply && this.inflight.get(reply.batch);
    if (!items) return; // not a batch answer, or one of a batch given up when the stream closed
    const settle = () => {
      this.inflight.delete(reply.batch);
      items.forEach((i) => this.inflightIds.delete(i.obs.id));
    };
    if (reply.type === "scores_ack") {
      await this.outbox.remove(items.map((i) => i.obs.id)); // out of IndexedDB first: never sent again after this
      settle();
      this.delivered(items);
      return;
    }
    settle();
    if (busy(reply.status)) { // kept, sent later: the student sees it (the database restarting, say)
      this.offline = true;
      this.ui.conn("reconnecting: scores are kept on this device and sent later", "bad");
      this.schedule(BUSY_RETRY_MS);
      return;
    }
    await this.dropped(items, reply.status, reply.detail);
    if (reply.status === 409) this.ui.ended();
  }

  /** Send what waits, oldest first: on the stream if open, the rest by HTTP. */
  async flush() {
    if (this.flushing) return;
    this.flushing = true;
    try {
      const onStream = this.streaming;
      if (onStream) this.sendOnStream();
      const viaHttp = (item) => !this.inflightIds.has(item.obs.id) && !(onStream && this.own(item));
      for (let items = this.outbox.oldest(BATCH, viaHttp); items.length; items = this.outbox.oldest(BATCH, viaHttp)) {
        if (!(await this.postBatch(items))) return;
        if (this.streaming && !onStream) break; // the stream is back: it takes the rest
      }
    } finally { this.flushing = false; this.ui.changed(); }
  }

  /** POST one join's oldest samples; false when the server is unreachable or busy (a backoff is scheduled). */
  async postBatch(items) {
    const { sid, token } = items[0];
    const same = items.filter((i) => i.sid === sid && i.token === token);
    try {
      await this.post(`/api/sessions/${sid}/observations`, batchBody(same), token);
    } catch (err) {
      if (busy(err.status)) {
        this.offline = true;
        this.ui.conn("offline: scores are kept on this device and sent later", "bad");
        this.attempt += 1;
        this.schedule(backoff(this.attempt));
        return false;
      }
      // Refused for good (the class ended, the token expired, a time outside the class): dropped.
      await this.dropped(same, err.status, err.message);
      if (err.status === 409 && this.join && sid === this.join.session_id) this.ui.ended();
      return true;
    }
    await this.outbox.remove(same.map((i) => i.obs.id));
    this.delivered(same);
    return true;
  }
}
