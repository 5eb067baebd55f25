/*
 * ClassMood's vision pipeline in the browser: CenterFace detection, eye-aligned crop, grey, area resize,
 * normalisation and the emotion model, on onnxruntime-web (served by ClassMood, never from a CDN).
 *
 * It reproduces classmood.vision (detector.py, preprocess.py, pipeline.py, classifier.py) step by step. Every
 * number comes from GET /api/ondevice/config: the model's contract (its ONNX metadata) and the pipeline's
 * settings as Python defines them. Pictures never leave this module: it returns boxes and probabilities only.
 */

let ortModule = null;

/** Python's round(): halves go to the even neighbour (OpenCV sizes and crop sides are computed with it). */
function pyRound(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** OpenCV's saturate_cast<uchar> of a float: round half to even, clip to 0..255. */
function toByte(v) {
  const r = pyRound(v);
  return r < 0 ? 0 : r > 255 ? 255 : r;
}

/**
 * Area-weighted resize of an interleaved image (channels per pixel `ch`), like cv2.INTER_AREA when shrinking:
 * each output pixel is the mean of the input area it covers, partial pixels weighted by their overlap.
 * Separable: a horizontal pass into float rows, then a vertical one, each summing its taps in index order.
 */
export function resizeArea(src, sw, sh, ch, dw, dh) {
  if (sw === 2 * dw && sh === 2 * dh) return halve(src, sw, ch, dw, dh);
  const { first, count, offset, weights } = areaTaps(sw, dw), yt = areaTaps(sh, dh), row = dw * ch;
  const rows = new Float64Array(sh * row);
  for (let y = 0; y < sh; y += 1) {
    const from = y * sw * ch, to = y * row;
    for (let dx = 0; dx < dw; dx += 1) {
      const n = count[dx], o = offset[dx], s0 = from + first[dx] * ch;
      for (let c = 0; c < ch; c += 1) {
        let acc = 0;
        for (let k = 0; k < n; k += 1) acc += src[s0 + k * ch + c] * weights[o + k];
        rows[to + dx * ch + c] = acc;
      }
    }
  }
  const out = new Uint8ClampedArray(dh * row), acc = new Float64Array(row);
  for (let dy = 0; dy < dh; dy += 1) { // row by row: the same sums, in the same order, read sequentially
    const n = yt.count[dy], o = yt.offset[dy], r0 = yt.first[dy] * row, to = dy * row;
    acc.fill(0);
    for (let k = 0; k < n; k += 1) {
      const w = yt.weights[o + k], base = r0 + k * row;
      for (let i = 0; i < row; i += 1) acc[i] += rows[base + i] * w;
    }
    for (let i = 0; i < row; i += 1) out[to + i] = toByte(acc[i]);
  }
  return out;
}

/** Exactly half the size: OpenCV's fast path, the mean of 2x2 pixels rounded half up ((sum + 2) >> 2). */
function halve(src, sw, ch, dw, dh) {
  const out = new Uint8ClampedArray(dw * dh * ch);
  for (let y = 0; y < dh; y += 1) {
    for (let x = 0; x < dw; x += 1) {
      const a = (2 * y * sw + 2 * x) * ch, b = a + sw * ch;
      for (let c = 0; c < ch; c += 1) {
        out[(y * dw + x) * ch + c] = (src[a + c] + src[a + ch + c] + src[b + c] + src[b + ch + c] + 2) >> 2;
      }
    }
  }
  return out;
}

const tapCache = new Map(); // a stream resizes to the same few sizes at every frame

/**
 * For each output index of a resize from `size` to `outSize` pixels: its first input index, its number of taps
 * and where its weights (overlap / scale, summing to 1) start in the flat `weights`; cached by sizes.
 */
function areaTaps(size, outSize) {
  const key = `${size}>${outSize}`;
  if (tapCache.has(key)) return tapCache.get(key);
  const scale = size / outSize, first = new Int32Array(outSize), count = new Int32Array(outSize);
  const offset = new Int32Array(outSize), weights = [];
  for (let d = 0; d < outSize; d += 1) {
    const f0 = d * scale, f1 = Math.min(size, f0 + scale);
    offset[d] = weights.length;
    for (let s = Math.floor(f0); s < Math.ceil(f1 - 1e-9); s += 1) {
      const w = Math.min(f1, s + 1) - Math.max(f0, s);
      if (w <= 1e-9) continue; // only ever the first or the last: the kept taps are consecutive
      if (!count[d]) first[d] = s;
      count[d] += 1;
      weights.push(w / scale);
    }
  }
  if (tapCache.size >= 64) tapCache.clear(); // region sizes vary with the faces: keep the cache small
  const taps = { first, count, offset, weights: Float64Array.from(weights) };
  tapCache.set(key, taps);
  return taps;
}

/** OpenCV's RGB->grey (fixed point 0.299 R + 0.587 G + 0.114 B, as cv2.cvtColor computes it) of RGBA pixels. */
export function greyOf(rgba, width, height) {
  const grey = new Uint8Array(width * height);
  for (let i = 0, j = 0; i < grey.length; i += 1, j += 4) {
    grey[i] = (rgba[j] * 4899 + rgba[j + 1] * 9617 + rgba[j + 2] * 1868 + 8192) >> 14;
  }
  return grey;
}

/** The square crop of one face: centre, side and angle (degrees), as preprocess.face_frame. */
export function faceFrame(box, marks, crop, eyeMouthToFace) {
  const [x1, y1, x2, y2] = box;
  const eyes = [(marks[0] + marks[2]) / 2, (marks[1] + marks[3]) / 2];
  const mouth = [(marks[6] + marks[8]) / 2, (marks[7] + marks[9]) / 2];
  const angle = crop.align ? Math.atan2(marks[3] - marks[1], marks[2] - marks[0]) * 180 / Math.PI : 0;
  const boxSize = Math.sqrt(Math.max(x2 - x1, 1) * Math.max(y2 - y1, 1));
  const mouthSize = Math.max(Math.hypot(mouth[0] - eyes[0], mouth[1] - eyes[1]) * eyeMouthToFace, 1);
  const side = crop.scale * Math.sqrt(boxSize * mouthSize);
  const rad = angle * Math.PI / 180;
  const cx = (eyes[0] + mouth[0]) / 2 - crop.shift * side * -Math.sin(rad);
  const cy = (eyes[1] + mouth[1]) / 2 - crop.shift * side * Math.cos(rad);
  return { cx, cy, side, angle };
}

/**
 * Rotate and scale a grey image into an out x out square, as cv2.warpAffine with INTER_LINEAR and
 * BORDER_REPLICATE does: source positions on OpenCV's 1/32-pixel grid, bilinear weights.
 */
function warpCrop(grey, width, height, frame, out) {
  const { cx, cy, side, angle } = frame;
  const s = out / side, rad = angle * Math.PI / 180;
  const a = s * Math.cos(rad), b = s * Math.sin(rad);
  // Forward map (cv2.getRotationMatrix2D, then shifted so the centre lands in the middle of the square).
  const m = [a, b, (1 - a) * cx - b * cy + out / 2 - cx, -b, a, b * cx + (1 - a) * cy + out / 2 - cy];
  const det = m[0] * m[4] - m[1] * m[3];
  const i0 = m[4] / det, i1 = -m[1] / det, i3 = -m[3] / det, i4 = m[0] / det;
  const i2 = -(i0 * m[2] + i1 * m[5]), i5 = -(i3 * m[2] + i4 * m[5]);
  const dst = new Uint8Array(out * out);
  const AB = 1024, TAB = 32;
  const at = (x, y) => grey[Math.min(height - 1, Math.max(0, y)) * width + Math.min(width - 1, Math.max(0, x))];
  for (let y = 0; y < out; y += 1) {
    const bx = Math.round((i1 * y + i2) * AB) + AB / TAB / 2, by = Math.round((i4 * y + i5) * AB) + AB / TAB / 2;
    for (let x = 0; x < out; x += 1) {
      const X = (Math.round(i0 * x * AB) + bx) >> 5, Y = (Math.round(i3 * x * AB) + by) >> 5;
      const x0 = X >> 5, y0 = Y >> 5, fx = (X & 31) / TAB, fy = (Y & 31) / TAB;
      const v = (at(x0, y0) * (1 - fx) + at(x0 + 1, y0) * fx) * (1 - fy) +
        (at(x0, y0 + 1) * (1 - fx) + at(x0 + 1, y0 + 1) * fx) * fy;
      dst[y * out + x] = toByte(v);
    }
  }
  return dst;
}

/** One face as a 48x48 grey crop, as preprocess.crop_face. */
export function cropFace(grey, width, height, row, cfg) {
  const { contract, pipeline } = cfg;
  const size = contract.input_size;
  const frame = faceFrame(row.box, row.marks, contract.crop, pipeline.eye_mouth_to_face);
  const out = Math.min(pipeline.max_crop_side, Math.max(size, pyRound(frame.side)));
  const warped = warpCrop(grey, width, height, frame, out);
  return out === size ? warped : resizeArea(warped, out, out, 1, size, size);
}

/** The network's input for one crop: scaled, then standardised per image (contract.normalisation). */
function normalise(crop, norm) {
  const x = new Float32Array(crop.length);
  let sum = 0;
  for (let i = 0; i < crop.length; i += 1) { x[i] = Math.fround(crop[i] * Math.fround(norm.scale)); sum += x[i]; }
  if (!norm.per_image_standardise) return x;
  const mean = sum / x.length;
  let sq = 0;
  for (let i = 0; i < x.length; i += 1) sq += (x[i] - mean) ** 2;
  const std = Math.max(Math.sqrt(sq / x.length), norm.std_floor);
  for (let i = 0; i < x.length; i += 1) x[i] = (x[i] - mean) / std;
  return x;
}

function mirrored(x, size) {
  const m = new Float32Array(x.length);
  for (let y = 0; y < size; y += 1) for (let c = 0; c < size; c += 1) m[y * size + c] = x[y * size + size - 1 - c];
  return m;
}

/** The side a frame is detected at, as pipeline.detection_side("auto"). */
function detectionSide(width, height, p) {
  return Math.max(width, height) <= p.large_frame ? p.webcam_side : p.gallery_side;
}

/** CenterFace's maps to face rows, as detector.decode then detector.nms. */
function decode(heat, size, offset, marks, gh, gw, d) {
  const n = gh * gw, found = [];
  for (let y = 0; y < gh; y += 1) {
    for (let x = 0; x < gw; x += 1) {
      const v = heat[y * gw + x];
      if (!(v > d.threshold)) continue;
      let peak = true; // a local maximum of its 3x3 neighbourhood (cv2.dilate ignores outside cells)
      for (let yy = Math.max(0, y - 1); peak && yy <= Math.min(gh - 1, y + 1); yy += 1) {
        for (let xx = Math.max(0, x - 1); xx <= Math.min(gw - 1, x + 1); xx += 1) {
          if (heat[yy * gw + xx] > v) { peak = false; break; }
        }
      }
      if (!peak) continue;
      const i = y * gw + x;
      const bh = Math.exp(size[i]) * d.stride, bw = Math.exp(size[n + i]) * d.stride;
      const cy = (y + offset[i] + 0.5) * d.stride, cx = (x + offset[n + i] + 0.5) * d.stride;
      const x1 = cx - bw / 2, y1 = cy - bh / 2;
      const m = [];
      for (let k = 0; k < 5; k += 1) m.push(marks[(2 * k + 1) * n + i] * bw + x1, marks[2 * k * n + i] * bh + y1);
      found.push({ box: [x1, y1, x1 + bw, y1 + bh], score: v, marks: m });
    }
  }
  found.sort((p, q) => q.score - p.score); // stable, like numpy's argsort(kind="stable")
  return nms(found, d.nms_iou);
}

/** Load onnxruntime-web (once) from ClassMood's own route. */
async function loadRuntime(runtime, threads) {
  if (!ortModule) ortModule = await import(runtime.module_url);
  const ort = ortModule.default && ortModule.default.InferenceSession ? ortModule.default : ortModule;
  ort.env.wasm.wasmPaths = runtime.wasm_paths;
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.proxy = false;
  ort.env.logLevel = "error"; // CenterFace's unused initialisers would fill the console with warnings
  return ort;
}

/** Whether this browser can run the model at all (WebAssembly with SIMD, which onnxruntime-web needs). */
export function supported() {
  if (typeof WebAssembly !== "object" || typeof WebAssembly.validate !== "function") return false;
  // The smallest module that uses a SIMD instruction (i32x4.splat): validates only where SIMD exists.
  const simd = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0,
    65, 0, 253, 15, 253, 98, 11]);
  return WebAssembly.validate(simd);
}

/** How many threads the wasm runtime may use: several only where the page is cross-origin isolated. */
export function defaultThreads() {
  return globalThis.crossOriginIsolated ? Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1)) : 1;
}

/** The median of a device's first 3 to 5 frame times when it is above `maxMs` (the device cannot keep up with
 * the class), else null (fine, or not yet known, or already judged). */
export function slowMedian(frameMs, maxMs) {
  if (frameMs.length < 3 || frameMs.length > 5) return null;
  const sorted = [...frameMs].sort((a, b) => a - b), median = sorted[Math.floor(sorted.length / 2)];
  return median > maxMs ? median : null;
}

/** The square of `scale` times the box's longer side around its centre, in the frame, as search.region_around. */
export function regionAround(box, width, height, scale) {
  const half = scale * Math.max(box[2] - box[0], box[3] - box[1]) / 2;
  const cx = (box[0] + box[2]) / 2, cy = (box[1] + box[3]) / 2;
  return [Math.max(0, Math.floor(cx - half)), Math.max(0, Math.floor(cy - half)),
    Math.min(width, Math.ceil(cx + half)), Math.min(height, Math.ceil(cy + half))];
}

/** Whether two crops differ by at most `maxMad` grey levels on average (0: never), as search.crop_unchanged. */
export function cropUnchanged(previous, crop, maxMad) {
  if (!previous || maxMad <= 0 || previous.length !== crop.length) return false;
  let total = 0;
  for (let i = 0; i < crop.length; i += 1) total += Math.abs(previous[i] - crop[i]);
  return total <= maxMad * crop.length;
}

const CELL = 16, SAMPLE = 4; // change cells, as search.CELL and search.SAMPLE

/** Per 16x16 cell, the sum of R + 2G + B of every 4th pixel, as search.change_map: { rows, cols, sums }. */
export function changeMap(rgba, width, height) {
  const rows = Math.floor(height / CELL), cols = Math.floor(width / CELL), sums = new Int32Array(rows * cols);
  for (let y = 0; y < rows * CELL; y += SAMPLE) {
    const r = Math.floor(y / CELL) * cols;
    for (let x = 0; x < cols * CELL; x += SAMPLE) {
      const j = (y * width + x) * 4;
      sums[r + Math.floor(x / CELL)] += rgba[j] + 2 * rgba[j + 1] + rgba[j + 2];
    }
  }
  return { rows, cols, sums };
}

/** Cells inside (or outside) the rectangles that moved by more than `level` grey levels, as search.changed_cells. */
function changedCells(now, before, level, rects, inside) {
  const mask = new Uint8Array(now.sums.length);
  for (const [x0, y0, x1, y1] of rects) {
    for (let r = Math.floor(y0 / CELL); r < Math.min(now.rows, Math.ceil(y1 / CELL)); r += 1) {
      for (let c = Math.floor(x0 / CELL); c < Math.min(now.cols, Math.ceil(x1 / CELL)); c += 1) mask[r * now.cols + c] = 1;
    }
  }
  const same = before && before.rows === now.rows && before.cols === now.cols;
  const limit = level * 4 * (CELL / SAMPLE) ** 2;
  let count = 0;
  for (let i = 0; i < mask.length; i += 1) {
    if (Boolean(mask[i]) === inside && (!same || Math.abs(now.sums[i] - before.sums[i]) > limit)) count += 1;
  }
  return count;
}

function boxIou(a, b) {
  const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]), h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  const inter = Math.max(0, w) * Math.max(0, h);
  return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter + 1e-9);
}

/**
 * Create the pipeline. `cfg` is GET /api/ondevice/config. Returns { analyse(rgba, width, height[, timeS]) -> faces,
 * reset, stats, threads, head, search, close }; each face is { box: [x, y, w, h], score, probs: [7 in
 * contract.labels order], label }. Successive calls are one stream: faces are looked for near where they were
 * and unchanged crops keep their probabilities, by the rules of classmood.vision.search with cfg.search's
 * numbers (`options.search`, else cfg.default_search: "shipped" or "baseline", every frame in full). `timeS` (s)
 * defaults to the page's clock; `reset()` forgets the faces.
 */
export async function createPipeline(cfg, options = {}) {
  const threads = options.threads || defaultThreads();
  const ort = options.ort || await loadRuntime(cfg.runtime, threads); // options.ort, options.models: for Node
  const searchName = options.search || cfg.default_search || "shipped";
  const s = cfg.search && cfg.search[searchName];
  if (!s) throw new Error(`no search settings called ${searchName}`);
  // At one picture a second, threads that spin-wait for the next job between pictures (onnxruntime's default,
  // kept by the baseline setting) burn the student's CPU for nothing: s.thread_spin false lets them sleep.
  const spin = () => ({ allow_spinning: s.thread_spin ? "1" : "0" }); // two objects: onnxruntime refuses a shared one
  const opts = { executionProviders: ["wasm"], graphOptimizationLevel: "all", logSeverityLevel: 3,
    extra: { session: { intra_op: spin(), inter_op: spin() } } };
  const models = options.models || { detector: cfg.detector_model_url, emotion: cfg.emotion_model_url };
  const [detector, classifier] = await Promise.all([
    ort.InferenceSession.create(models.detector, opts),
    ort.InferenceSession.create(models.emotion, opts),
  ]);
  const contract = cfg.contract;
  const head = contract.heads.find((h) => h.name === contract.default_head);
  if (!head) throw new Error(`the model's contract has no head ${contract.default_head}`);
  const d = cfg.detector, p = cfg.pipeline;
  const blobs = new Map(); // one detector input per size, refilled at every frame
  let grey = null, faces = [], rows = [], lastFull = null, scoutRef = null, regionRef = null;
  const stats = { full: 0, scouts: 0, regions: 0, unchanged: 0, classified: 0, skipped: 0 };

  /** Faces in the rectangle [x0, y0, x1, y1] of the frame, detected at `side` at most, in frame pixels. */
  async function detect(rgba, width, rect, side) {
    const [x0, y0, x1, y1] = rect, rw = x1 - x0, rh = y1 - y0;
    let scale = 1, w = rw, h = rh, rgb = rgbOf(rgba, width, rect);
    if (side && Math.max(rw, rh) > side) {
      scale = side / Math.max(rw, rh);
      w = pyRound(rw * scale); h = pyRound(rh * scale);
      rgb = resizeArea(rgb, rw, rh, 3, w, h);
    }
    // Padded (not stretched) to multiples of 32, channels first, raw 0-255 values.
    const pw = Math.ceil(w / d.multiple) * d.multiple, ph = Math.ceil(h / d.multiple) * d.multiple;
    const key = `${pw}x${ph}`;
    const blob = blobs.get(key) || new Float32Array(3 * pw * ph);
    blobs.set(key, blob);
    blob.fill(0);
    for (let y = 0; y < h; y += 1) {
      for (let x = 0; x < w; x += 1) {
        const i = (y * w + x) * 3, t = y * pw + x;
        blob[t] = rgb[i]; blob[pw * ph + t] = rgb[i + 1]; blob[2 * pw * ph + t] = rgb[i + 2];
      }
    }
    const out = await detector.run({ [d.input]: new ort.Tensor("float32", blob, [1, 3, ph, pw]) });
    const [heat, size, offset, marks] = d.outputs.map((name) => out[name]);
    const rows = decode(heat.data, size.data, offset.data, marks.data, heat.dims[2], heat.dims[3], d);
    for (const name of d.outputs) out[name].dispose && out[name].dispose();
    return rows.map((r) => {
      const box = r.box.map((v) => v / scale);
      box[0] = Math.min(rw, Math.max(0, box[0])); box[2] = Math.min(rw, Math.max(0, box[2]));
      box[1] = Math.min(rh, Math.max(0, box[1])); box[3] = Math.min(rh, Math.max(0, box[3]));
      return { box, score: r.score, marks: r.marks.map((v) => v / scale) };
    }).filter((r) => Math.min(r.box[2] - r.box[0], r.box[3] - r.box[1]) >= p.min_face).map((r) => ({
      box: [r.box[0] + x0, r.box[1] + y0, r.box[2] + x0, r.box[3] + y0], score: r.score,
      marks: r.marks.map((v, k) => v + (k % 2 ? y0 : x0)),
    }));
  }

  /** Rule 2: each box's best detection in its region; null when one is lost. */
  async function searchRegions(rgba, width, height, boxes) {
    const found = [];
    for (const box of boxes) {
      const rows = await detect(rgba, width, regionAround(box, width, height, s.region_scale), s.region_side);
      if (!rows.length) return null;
      found.push(rows[0]);
    }
    found.sort((a, b) => b.score - a.score);
    return nms(found, d.nms_iou);
  }

  /** Rules 1-4 of classmood.vision.search (FaceSearch.detect), step by step. */
  async function findFaces(rgba, width, height, timeS) {
    const fullSide = detectionSide(width, height, p);
    const whole = [0, 0, width, height];
    const full = async (cells) => {
      lastFull = timeS; scoutRef = cells; regionRef = cells; stats.full += 1;
      rows = await detect(rgba, width, whole, fullSide);
      return rows;
    };
    if (!s.region_search) return full(null);
    const cells = s.change_level > 0 ? changeMap(rgba, width, height) : null;
    const regions = faces.map((f) => regionAround(f.box, width, height, s.region_scale));
    let due = lastFull === null || timeS - lastFull >= s.full_every_s;
    if (due && cells && lastFull !== null && timeS - lastFull < s.scout_max_s) {
      due = changedCells(cells, scoutRef, s.change_level, regions, false) >= s.change_cells;
    }
    if (!faces.length) return due ? full(cells) : [];
    if (faces.length > s.max_regions) return full(cells);
    const boxes = faces.map((f) => f.box);
    if (due) {
      lastFull = timeS; scoutRef = cells; stats.scouts += 1;
      const scout = await detect(rgba, width, whole, pyRound(fullSide * s.scout_scale));
      const known = [...boxes];
      for (const r of scout) if (known.every((b) => boxIou(r.box, b) < s.match_iou)) boxes.push(r.box);
    }
    if (boxes.length === faces.length && cells && changedCells(cells, regionRef, s.change_level, regions, true) === 0) {
      stats.unchanged += 1;
      return rows; // nothing moved where the faces are: the same rows
    }
    const found = boxes.length <= s.max_regions ? await searchRegions(rgba, width, height, boxes) : null;
    if (!found) return full(cells);
    stats.regions += 1; regionRef = cells; rows = found;
    return rows;
  }

  async function classify(crops) {
    const size = contract.input_size, px = size * size, n = crops.length;
    // the head's own, else the file's (contract.head_tta); the baseline setting: the file's, as before
    const tta = ((s.head_tta && head.tta) || contract.tta) === "mirror";
    const batch = new Float32Array((tta ? 2 : 1) * n * px);
    crops.forEach((crop, k) => {
      const x = normalise(crop, contract.normalisation);
      batch.set(x, k * px);
      if (tta) batch.set(mirrored(x, size), (n + k) * px); // the faces, then their mirror images
    });
    const input = new ort.Tensor("float32", batch, [(tta ? 2 : 1) * n, 1, size, size]);
    const out = await classifier.run({ [contract.input_name]: input }, [head.output]);
    const probs = out[head.output].data, classes = contract.labels.length;
    const result = [];
    for (let k = 0; k < n; k += 1) {
      const row = [];
      for (let c = 0; c < classes; c += 1) {
        const v = probs[k * classes + c];
        row.push(tta ? (v + probs[(n + k) * classes + c]) / 2 : v);
      }
      const total = row.reduce((a, b) => a + b, 0); // int8 softmax steps: renormalise, as the classifier does
      result.push(row.map((v) => v / total));
    }
    out[head.output].dispose && out[head.output].dispose();
    return result;
  }

  /** Rule 3: the faces' probabilities, reusing those of unchanged crops; the faces become the tracked ones. */
  async function classifyStream(rows, crops, timeS) {
    const claimed = new Set();
    const matches = rows.map((r) => {
      let best = -1, bestIou = -1;
      faces.forEach((f, i) => {
        const overlap = boxIou(r.box, f.box);
        if (!claimed.has(i) && overlap >= s.match_iou && overlap > bestIou) { best = i; bestIou = overlap; }
      });
      if (best >= 0) claimed.add(best);
      return best;
    });
    const reuse = matches.map((m, k) => m >= 0 && timeS - faces[m].at < s.skip_max_s &&
      cropUnchanged(faces[m].crop, crops[k], s.skip_mad));
    const todo = rows.map((_, k) => k).filter((k) => !reuse[k]);
    const fresh = todo.length ? await classify(todo.map((k) => crops[k])) : [];
    const probs = rows.map((_, k) => (reuse[k] ? faces[matches[k]].probs : fresh[todo.indexOf(k)]));
    faces = rows.map((r, k) => (reuse[k] ? { ...faces[matches[k]], box: r.box }
      : { box: r.box, crop: crops[k], probs: probs[k], at: timeS }));
    stats.classified += todo.length; stats.skipped += rows.length - todo.length;
    return probs;
  }

  async function analyse(rgba, width, height, timeS = performance.now() / 1000) {
    const rows = await findFaces(rgba, width, height, timeS);
    if (!grey || grey.length !== width * height) grey = new Uint8Array(width * height);
    const crops = rows.map((r) => {
      greyInto(grey, rgba, width, height, r, cfg);
      return cropFace(grey, width, height, r, cfg);
    });
    const probs = await classifyStream(rows, crops, timeS);
    return rows.map((r, k) => {
      const best = probs[k].indexOf(Math.max(...probs[k]));
      return { box: [r.box[0], r.box[1], r.box[2] - r.box[0], r.box[3] - r.box[1]], score: r.score,
        landmarks: r.marks, probs: probs[k], label: contract.labels[best] };
    });
  }

  return {
    analyse, threads, head: head.name, labels: contract.labels, search: searchName, stats,
    reset: () => { faces = []; rows = []; lastFull = null; scoutRef = null; regionRef = null; },
    close: async () => { await detector.release(); await classifier.release(); },
  };
}

/** Greedy non-maximum suppression of rows sorted by score, as detector.nms. */
function nms(found, iou) {
  const keep = [];
  let rest = found;
  while (rest.length) {
    const best = rest[0];
    keep.push(best);
    rest = rest.slice(1).filter((r) => boxIou(best.box, r.box) < iou);
  }
  return keep;
}

/** The grey pixels a face's crop reads (its rotated square, plus the bilinear neighbour), into `grey`. */
function greyInto(grey, rgba, width, height, row, cfg) {
  const frame = faceFrame(row.box, row.marks, cfg.contract.crop, cfg.pipeline.eye_mouth_to_face);
  const r = frame.side * Math.SQRT1_2 + 2;
  const x0 = Math.max(0, Math.floor(frame.cx - r)), x1 = Math.min(width, Math.ceil(frame.cx + r) + 1);
  const y0 = Math.max(0, Math.floor(frame.cy - r)), y1 = Math.min(height, Math.ceil(frame.cy + r) + 1);
  for (let y = y0; y < y1; y += 1) {
    for (let x = x0, j = (y * width + x0) * 4; x < x1; x += 1, j += 4) {
      grey[y * width + x] = (rgba[j] * 4899 + rgba[j + 1] * 9617 + rgba[j + 2] * 1868 + 8192) >> 14;
    }
  }
}

/** The RGB pixels of the rectangle [x0, y0, x1, y1] of an RGBA frame `width` pixels wide. */
function rgbOf(rgba, width, rect) {
  const [x0, y0, x1, y1] = rect, rw = x1 - x0;
  const rgb = new Uint8Array(rw * (y1 - y0) * 3);
  for (let y = y0, i = 0; y < y1; y += 1) {
    for (let j = (y * width + x0) * 4, end = j + rw * 4; j < end; i += 3, j += 4) {
      rgb[i] = rgba[j]; rgb[i + 1] = rgba[j + 1]; rgb[i + 2] = rgba[j + 2];
    }
  }
  return rgb;
}
