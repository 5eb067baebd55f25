/*
 * The student's camera: started only after consent, and stopped, light off, on pause, on leaving and at the end
 * of the class. While on, it calls the page's tick once per sampling interval; a tick grabs the current picture.
 */

const HIDE_KEY = "classmood.hidePreview"; // the student's choice, kept by this browser for every class

/**
 * The "Hide my picture" switch: the preview hidden on the student's own screen (the camera and the analysis go
 * on). A shown preview is the page's largest cost after the analysis (a frame composited at every camera frame),
 * and some students would rather not watch themselves all class.
 */
export function wirePreviewSwitch(button, video, note) {
  const apply = (hidden) => {
    // not display:none: Chromium stops updating a video that is out of the layout, so every grab would read the
    // same old picture; an invisible one is not composited and stays current
    video.classList.toggle("invisible", hidden);
    note.classList.toggle("hidden", !hidden);
    button.setAttribute("aria-pressed", String(hidden));
    button.textContent = hidden ? "Show my picture" : "Hide my picture";
  };
  let stored = null;
  try { stored = localStorage.getItem(HIDE_KEY); } catch (_) { /* storage blocked: the preview shows */ }
  apply(stored === "1");
  button.addEventListener("click", () => {
    const hidden = button.getAttribute("aria-pressed") !== "true";
    apply(hidden);
    try { localStorage.setItem(HIDE_KEY, hidden ? "1" : "0"); } catch (_) { /* kept for this page only */ }
  });
}

export class Camera {
  constructor(video) { Object.assign(this, { video, stream: null, timer: null }); }

  get on() { return Boolean(this.stream); }

  /**
   * Ask for the camera and call ``tick`` every ``intervalS`` seconds (0.2 at least); throws when refused.
   * ``fps`` (0: the camera's own) is asked as an ideal, never below two pictures a tick, so each tick reads a fresh one.
   */
  async start(tick, intervalS, fps = 0) {
    const every = Math.max(0.2, intervalS);
    const video = { width: { ideal: 640 }, height: { ideal: 480 } };
    if (fps > 0) video.frameRate = { ideal: Math.max(fps, 2 / every) };
    this.stream = await navigator.mediaDevices.getUserMedia({ video, audio: false });
    this.video.srcObject = this.stream;
    this.timer = setInterval(tick, every * 1000);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
    if (this.stream) this.stream.getTracks().forEach((t) => t.stop()); // the camera light goes off
    this.stream = null;
    this.video.srcObject = null;
  }

  /** The current picture drawn on ``canvas`` at most ``maxWidth`` wide, or null before the video plays. */
  grab(maxWidth, canvas = document.createElement("canvas")) {
    if (!this.video.videoWidth) return null;
    canvas.width = Math.min(maxWidth, this.video.videoWidth);
    canvas.height = Math.round(canvas.width * this.video.videoHeight / this.video.videoWidth);
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(this.video, 0, 0, canvas.width, canvas.height);
    return { canvas, ctx };
  }
}
