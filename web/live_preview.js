// Plays the live preview of a sampling run: all frames of the current step as a small looping animation.
//
// The server (sampling/live_preview.py) sends the `animateflow.live_preview` event with one JPEG sheet of the
// frames tiled row by row and its layout; this panel cuts the frames out again and cycles through them on a
// canvas. It floats in the bottom-left corner of the graph canvas (measured from the editor's graph panel, so it
// follows the sidebar, the menus and the bottom panel wherever the editor puts them; the sampler node's own
// single-image preview stays as ComfyUI draws it), in the colours of the editor's theme, names the node and the
// step, and goes away when the run ends, when its node is removed, or until the next run when closed. The
// setting "AnimateFlow.LivePreview.Enabled" turns it off.
// data-* attributes on the panel (step, frame, updates, playing) let tests watch it.

import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { t } from "./strings.js";

const EVENT = "animateflow.live_preview";
const SETTING = "AnimateFlow.LivePreview.Enabled";
const RUN_ENDED = ["execution_success", "execution_error", "execution_interrupted"];
const DISPLAY_WIDTH = 256;
const MARGIN = 12;
const BOTTOM_CLEARANCE = 64; // above the canvas info (render time, node counts) the editor draws in that corner

function enabled() {
  const value = app.extensionManager?.setting?.get?.(SETTING) ?? app.ui?.settings?.getSettingValue?.(SETTING);
  return value !== false;
}

// The theme's colours: the editor sets these variables for every palette (dark, light, custom).
const THEME = {
  background: "var(--comfy-menu-bg, rgba(24, 24, 24, 0.92))",
  color: "var(--fg-color, #ddd)",
  border: "1px solid var(--border-color, #444)",
};

class LivePreviewPanel {
  constructor() {
    this.root = null;
    this.sheet = null;
    this.layout = null;
    this.frame = 0;
    this.timer = null;
    this.closed = false;
    this.updates = 0;
    this.nodeId = null;
    this.generation = 0;
  }

  ensure() {
    if (this.root) return;
    const root = document.createElement("div");
    root.className = "animateflow-live-preview";
    Object.assign(root.style, {
      position: "fixed", zIndex: 1000, padding: "6px", background: THEME.background, color: THEME.color,
      border: THEME.border, font: "12px sans-serif", borderRadius: "6px", boxShadow: "0 2px 8px rgba(0, 0, 0, 0.4)",
      display: "none",
    });
    const header = document.createElement("div");
    Object.assign(header.style, { display: "flex", justifyContent: "space-between", gap: "8px", marginBottom: "4px" });
    this.title = document.createElement("span");
    this.title.className = "animateflow-live-preview-title";
    const close = document.createElement("button");
    close.textContent = "×";
    close.title = t("livePreview.close");
    close.setAttribute("aria-label", close.title);
    Object.assign(close.style, { background: "none", border: "none", color: "inherit", cursor: "pointer", padding: 0 });
    close.addEventListener("click", () => this.hide(true));
    header.append(this.title, close);
    this.canvas = document.createElement("canvas");
    this.canvas.style.display = "block";
    root.append(header, this.canvas);
    document.body.append(root);
    this.root = root;
  }

  // The bottom-left corner of the graph's panel (the canvas area between the editor's sidebars and panels; the
  // canvas element itself may reach under them), or of the canvas where there is no such panel.
  place() {
    const area = document.querySelector(".graph-canvas-panel") ?? app.canvasEl ?? app.canvas?.canvas;
    const box = area?.getBoundingClientRect?.();
    const left = box && box.width ? box.left : 0;
    const bottom = box && box.height ? window.innerHeight - box.bottom : 0;
    Object.assign(this.root.style, { left: `${left + MARGIN}px`, bottom: `${bottom + BOTTOM_CLEARANCE}px` });
  }

  update(detail) {
    if (this.closed || !detail?.image || !enabled()) return;
    this.ensure();
    const generation = this.generation;
    const image = new Image();
    image.onload = () => {
      if (generation !== this.generation || !enabled()) return;
      this.sheet = image;
      this.layout = detail;
      this.nodeId = detail.node != null ? String(detail.node) : null;
      const scale = DISPLAY_WIDTH / detail.width;
      this.canvas.width = DISPLAY_WIDTH;
      this.canvas.height = Math.max(1, Math.round(detail.height * scale));
      const node = this.nodeId != null ? app.graph?.getNodeById?.(this.nodeId) : null;
      const name = node?.title ?? (this.nodeId != null ? t("livePreview.node", { id: this.nodeId }) : t("livePreview.sampler"));
      this.title.textContent = t("livePreview.title", { node: name, step: detail.step, total: detail.total,
                                                         frames: detail.frames });
      this.updates += 1;
      Object.assign(this.root.dataset, { step: detail.step, total: detail.total, frames: detail.frames,
                                          updates: this.updates });
      this.place();
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
    this.root.dataset.playing = "true";
  }

  // Stops the animation and lets go of the frames; `untilNextRun` also ignores the rest of this run's updates.
  hide(untilNextRun) {
    clearInterval(this.timer);
    this.timer = null;
    this.sheet = null;
    this.layout = null;
    this.nodeId = null;
    this.closed = untilNextRun;
    this.generation += 1; // an update still decoding when the run ended must not bring the panel back
    if (!this.root) return;
    this.root.style.display = "none";
    this.root.dataset.playing = "false";
  }

  newRun() {
    this.closed = false;
  }

  nodeRemoved(node) {
    if (this.nodeId != null && String(node.id) === this.nodeId) this.hide(true);
  }
}

const panel = new LivePreviewPanel();

app.registerExtension({
  name: "AnimateFlow.LivePreview",
  settings: [
    {
      id: SETTING,
      category: ["AnimateFlow", "Live preview", "Enabled"],
      name: "Show the animated live preview while a motion module samples",
      tooltip: "All frames of the current step loop in a small panel on the canvas; it closes when the run ends.",
      type: "boolean",
      defaultValue: true,
      onChange: (value) => {
        if (value === false) panel.hide(false);
      },
    },
  ],
  setup() {
    api.addEventListener(EVENT, (event) => panel.update(event.detail));
    api.addEventListener("execution_start", () => panel.newRun());
    for (const name of RUN_ENDED) api.addEventListener(name, () => panel.hide(false));
  },
  nodeCreated(node) {
    const onRemoved = node.onRemoved;
    node.onRemoved = function () {
      panel.nodeRemoved(this);
      return onRemoved?.apply(this, arguments);
    };
  },
});
