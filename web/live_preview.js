// Plays the live preview of a sampling run: all frames of the current step as a small looping animation.
//
// The server (sampling/live_preview.py) sends the `animateflow.live_preview` event with one JPEG sheet of the
// frames tiled row by row and its layout; this panel cuts the frames out again and cycles through them on a
// canvas. It floats at the editor's right edge, below the run controls and clear of the canvas controls in the
// bottom corner (rather than on the sampler node, whose own single-image preview stays as ComfyUI draws it),
// names the node and the step, and can be closed until the next run.
// data-* attributes on the panel (step, frame, updates) let tests watch it.

import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const EVENT = "animateflow.live_preview";
const DISPLAY_WIDTH = 256;

class LivePreviewPanel {
  constructor() {
    this.root = null;
    this.sheet = null;
    this.layout = null;
    this.frame = 0;
    this.timer = null;
    this.closed = false;
    this.updates = 0;
  }

  ensure() {
    if (this.root) return;
    const root = document.createElement("div");
    root.className = "animateflow-live-preview";
    Object.assign(root.style, {
      position: "fixed", right: "16px", top: "190px", zIndex: 1000, padding: "6px",
      background: "rgba(24, 24, 24, 0.92)", color: "#ddd", font: "12px sans-serif", borderRadius: "6px",
      boxShadow: "0 2px 8px rgba(0, 0, 0, 0.5)", display: "none",
    });
    const header = document.createElement("div");
    Object.assign(header.style, { display: "flex", justifyContent: "space-between", gap: "8px", marginBottom: "4px" });
    this.title = document.createElement("span");
    this.title.className = "animateflow-live-preview-title";
    const close = document.createElement("button");
    close.textContent = "×";
    close.title = "Hide the live preview until the next run";
    Object.assign(close.style, { background: "none", border: "none", color: "#ddd", cursor: "pointer", padding: 0 });
    close.addEventListener("click", () => this.hide(true));
    header.append(this.title, close);
    this.canvas = document.createElement("canvas");
    this.canvas.style.display = "block";
    root.append(header, this.canvas);
    document.body.append(root);
    this.root = root;
  }

  update(detail) {
    if (this.closed || !detail?.image) return;
    this.ensure();
    const image = new Image();
    image.onload = () => {
      this.sheet = image;
      this.layout = detail;
      const scale = DISPLAY_WIDTH / detail.width;
      this.canvas.width = DISPLAY_WIDTH;
      this.canvas.height = Math.max(1, Math.round(detail.height * scale));
      const node = detail.node != null ? app.graph?.getNodeById?.(detail.node) : null;
      const name = node?.title ?? (detail.node != null ? `node ${detail.node}` : "sampler");
      this.title.textContent = `${name} · step ${detail.step}/${detail.total} · ${detail.frames} frames`;
      this.updates += 1;
      Object.assign(this.root.dataset, { step: detail.step, total: detail.total, frames: detail.frames,
                                          updates: this.updates });
      this.root.style.display = "block";
      this.frame = this.frame % detail.frames;
      this.draw();
      this.play(detail.fps || 8);
    };
    image.src = detail.image;
  }

  draw() {
    const layout = this.layout;
    if (!layout || !this.sheet) return;
    const i = this.frame;
    const x = (i % layout.columns) * layout.width;
    const y = Math.floor(i / layout.columns) * layout.height;
    const context = this.canvas.getContext("2d");
    context.drawImage(this.sheet, x, y, layout.width, layout.height, 0, 0, this.canvas.width, this.canvas.height);
    this.root.dataset.frame = i;
  }

  play(fps) {
    if (this.timer && this.fps === fps) return;
    clearInterval(this.timer);
    this.fps = fps;
    this.timer = setInterval(() => {
      if (!this.layout) return;
      this.frame = (this.frame + 1) % this.layout.frames;
      this.draw();
    }, 1000 / fps);
  }

  hide(untilNextRun) {
    clearInterval(this.timer);
    this.timer = null;
    this.closed = untilNextRun;
    if (this.root) this.root.style.display = "none";
  }

  newRun() {
    this.closed = false;
  }
}

const panel = new LivePreviewPanel();

app.registerExtension({
  name: "AnimateFlow.LivePreview",
  setup() {
    api.addEventListener(EVENT, (event) => panel.update(event.detail));
    api.addEventListener("execution_start", () => panel.newRun());
  },
});
