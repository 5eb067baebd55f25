/*
 * The student's camera: started only after consent, and stopped, light off, on pause, on leaving and at the end
 * of the class. While on, it calls the page's tick once per sampling interval; a tick grabs the current picture.
 */

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
