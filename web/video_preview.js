// Plays Video Combine's result on the node: <video> for MP4/WEBM, <img> for GIF.
//
// The node reports its playable files under the `animateflow` UI key (best first) rather than `images`,
// so the editor's own image preview does not also draw them. The element sits in a DOM widget with the
// editor's own `comfy-img-preview` class and video options, so it looks like ComfyUI's previews.
// A browser that cannot decode the first file (a Chromium without H.264) falls through to the next one.

import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const NODE_TYPE = "AnimateFlow_VideoCombine";
const WIDGET_NAME = "animateflow-preview";
const MIN_HEIGHT = 64;
const CONTAINER_MIME = { "video/h264-mp4": "video/mp4", "video/webm": "video/webm" };

function viewUrl(item) {
  const params = new URLSearchParams({
    filename: item.filename,
    subfolder: item.subfolder ?? "",
    type: item.type ?? "output",
  });
  return api.apiURL(`/view?${params}&t=${Date.now()}`);
}

function isVideo(item) {
  return item.format?.startsWith("video/");
}

function playable(item) {
  if (!isVideo(item)) return true;
  const mime = CONTAINER_MIME[item.format] ?? item.format;
  return document.createElement("video").canPlayType(mime) !== "";
}

function ensureContainer(node) {
  if (node.animateflowPreview) return node.animateflowPreview;
  const container = document.createElement("div");
  container.className = "comfy-img-preview animateflow-preview";
  Object.assign(container.style, { width: "100%", height: "100%", pointerEvents: "auto" });
  const widget = node.addDOMWidget(WIDGET_NAME, "preview", container, { serialize: false, hideOnZoom: false });
  widget.serialize = false;
  widget.computeLayoutSize = () => {
    const aspect = node.animateflowAspect;
    const width = node.size?.[0] ?? 256;
    return { minHeight: aspect ? Math.max(width / aspect, MIN_HEIGHT) : MIN_HEIGHT, minWidth: 64 };
  };
  node.animateflowPreview = container;
  return container;
}

function createElement(item) {
  const element = document.createElement(isVideo(item) ? "video" : "img");
  Object.assign(element.style, { width: "100%", height: "100%", objectFit: "contain" });
  if (isVideo(item)) {
    // The editor's own video preview options, plus muted autoplay so it plays like a GIF.
    Object.assign(element, { playsInline: true, controls: true, loop: true, muted: true, autoplay: true });
  }
  element.dataset.filename = item.filename;
  element.dataset.format = item.format ?? "";
  return element;
}

function fitNode(node, width, height) {
  if (!width || !height) return;
  node.animateflowAspect = width / height;
  const wanted = node.computeSize?.();
  if (wanted && wanted[1] > node.size[1]) node.setSize([node.size[0], wanted[1]]);
  node.setDirtyCanvas?.(true, true);
}

function showPreview(node, items) {
  const candidates = items.filter(playable);
  if (!candidates.length) return;
  const container = ensureContainer(node);
  const show = (index) => {
    const item = candidates[index];
    const element = createElement(item);
    element.addEventListener("error", () => {
      if (index + 1 < candidates.length) show(index + 1);
    });
    if (element instanceof HTMLVideoElement) {
      element.addEventListener("loadedmetadata", () => fitNode(node, element.videoWidth, element.videoHeight));
    } else {
      element.addEventListener("load", () => fitNode(node, element.naturalWidth, element.naturalHeight));
    }
    element.src = viewUrl(item);
    container.replaceChildren(element);
  };
  show(0);
}

app.registerExtension({
  name: "AnimateFlow.VideoPreview",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== NODE_TYPE) return;
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (output) {
      onExecuted?.apply(this, arguments);
      if (output?.animateflow?.length) showPreview(this, output.animateflow);
    };
  },
});
