/*
 * On-device analysis of the student's camera: ondevice.js's pipeline runs on one picture per tick, and only its
 * scores (or, when it finds no face, one "no face" sample with only an id and a time) go into the outbox, which
 * delivery.js empties. A busy device skips a tick; one far slower than the class's pace stops analysing, and the
 * page decides what comes next (the server's analysis, if the teacher allows it).
 */

import { uuid } from "./common.js";
import { NO_FACE } from "./outbox.js";

const FRAME_WIDTH = 640; // on-device analysis reads the camera at up to this width

/**
 * Load the runtime (the ES module at `moduleUrl`), the server's pipeline settings (`fetchConfig()`) and the
 * model. Throws an Error whose message says, for the student, why this browser cannot analyse here.
 */
export async function loadLocalAnalysis(moduleUrl, fetchConfig, page) {
  const od = await import(moduleUrl);
  if (!od.supported()) throw new Error("this browser has no WebAssembly with SIMD");
  try {
    const config = await fetchConfig();
    if (!config.runtime.available) throw new Error("the server has no in-browser runtime installed");
    return new LocalAnalysis(od, config, await od.createPipeline(config), page);
  } catch (err) {
    throw new Error("the model could not load (" + err.message + ")");
  }
}

/**
 * `page`: `camera` (camera.js), `outbox` (outbox.js), `join` (the student's place: session id and token),
 * `delivery` (told of each new sample), `stats` (its `sent` counts the scores made here), and the callbacks
 * `face(label)` (the first face's reading), `changed()` (after each sample) and `tooSlow(medianMs)`.
 */
export class LocalAnalysis {
  constructor(od, config, pipeline, page) {
    this.od = od;
    this.config = config;
    this.pipeline = pipeline; // null once the device was found too slow
    this.page = page;
    // the pipeline's search settings say the camera's rate (an ideal: the camera may deliver another)
    this.cameraFps = config.search[pipeline.search].camera_fps;
    this.busy = false;
    this.skipped = 0;
    this.frameMs = [];
    this.canvas = document.createElement("canvas"); // one canvas for every tick
  }

  /** Analyse the camera's current picture (the camera's tick). */
  async tick() {
    if (this.busy) { this.skipped += 1; return; }
    const picture = this.pipeline && this.page.camera.grab(FRAME_WIDTH, this.canvas);
    if (!picture) return;
    this.busy = true;
    try {
      const { width, height } = picture.canvas;
      const ts = Date.now() / 1000;
      const started = performance.now();
      const faces = await this.pipeline.analyse(picture.ctx.getImageData(0, 0, width, height).data, width, height);
      this.frameMs.push(performance.now() - started);
      if (!this.tooSlow()) await this.keep(faces, ts);
    } catch (err) {
      console.warn("on-device analysis failed", err);
    } finally { this.busy = false; }
  }

  /** Queue the faces' scores, or one "no face" sample (at most one per tick, like the observations). */
  async keep(faces, ts) {
    const { outbox, join, stats } = this.page;
    const labels = this.pipeline.labels;
    if (faces.length) {
      const batch = faces.map((f) => ({ id: uuid(), ts, score: f.score,
        probs: Object.fromEntries(labels.map((l, k) => [l, f.probs[k]])) }));
      await outbox.add(join.session_id, join.token, batch);
      stats.sent += batch.length;
      this.page.face(faces[0].label);
    } else {
      await outbox.add(join.session_id, join.token, [{ id: uuid(), ts }], NO_FACE);
    }
    this.page.delivery.added();
    this.page.changed();
  }

  /** After a few frames: a device far slower than the class's pace cannot take part this way. */
  tooSlow() {
    const median = this.od.slowMedian(this.frameMs, this.config.max_frame_ms);
    if (median === null) return false;
    this.pipeline = null;
    this.page.tooSlow(median);
    return true;
  }
}
