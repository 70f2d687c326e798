// Plays Video Combine's result on the node, with the run's facts underneath, and brings both back when a
// saved workflow is reopened.
//
// The node reports its files under the `animateflow` UI key (best first) rather than `images`, so the editor's
// own image preview does not also draw them, and its facts (frames, size, fps, gifsicle sizes) under
// `animateflow_info`. The element sits in a DOM widget with the editor's own `comfy-img-preview` class and
// video options, so it looks like ComfyUI's previews.
//
// Which file plays: the first video the browser says it can play (canPlayType on the container and codec),
// else the first image (GIF, WEBP, PNG). One that fails to load falls through to the next; the item whose
// `role` is "poster" (a still frame) is the video's poster and the last resort.
//
// The last result's file references and facts are kept in the node's properties: saved with the workflow,
// never sent in the prompt. On reopening, each file is checked with a HEAD request to /view, and the preview
// comes back only if one still exists.
//
// A removed node lets go of everything: the element's listeners (all added with the node's AbortSignal), the
// video's download and decoder (src dropped), and a restore still waiting for its HEAD requests does nothing.

import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";

const NODE_TYPE = "AnimateFlow_VideoCombine";
const WIDGET_NAME = "animateflow-preview";
const PROPERTY = "animateflow_preview";
const MIN_HEIGHT = 64;
const INFO_LINE_HEIGHT = 16;
function viewUrl(item) {
  const params = new URLSearchParams({
    filename: item.filename,
    subfolder: item.subfolder ?? "",
    type: item.type ?? "output",
  });
  return api.apiURL(`/view?${params}`);
}

function isVideo(item) {
  return item.format?.startsWith("video/");
}

// The payload's `mime` names container and codec (e.g. 'video/mp4; codecs="hvc1..."'), so an H.265 or ProRes
// file is skipped up front by a browser that cannot decode it instead of failing in the element.
function playable(item) {
  if (!isVideo(item)) return true;
  return document.createElement("video").canPlayType(item.mime ?? item.format) !== "";
}

function isPoster(item) {
  return item.role === "poster";
}

// Videos the browser can play, then images; the poster last (also used as the video's poster frame).
function candidates(items) {
  const poster = items.find(isPoster);
  const rest = items.filter((item) => !isPoster(item));
  const ordered = [...rest.filter((item) => isVideo(item) && playable(item)), ...rest.filter((item) => !isVideo(item))];
  return { ordered: poster ? [...ordered, poster] : ordered, poster };
}

function ensureContainer(node) {
  if (node.animateflowPreview) return node.animateflowPreview;
  const container = document.createElement("div");
  container.className = "comfy-img-preview animateflow-preview";
  Object.assign(container.style, {
    width: "100%", height: "100%", pointerEvents: "auto", display: "flex", flexDirection: "column",
  });
  const media = document.createElement("div");
  media.className = "animateflow-media";
  // The element fills this box and never grows it: a video's own size would otherwise push it over the info text.
  Object.assign(media.style, {
    flex: "1 1 auto", minHeight: "0", width: "100%", position: "relative", overflow: "hidden",
  });
  const info = document.createElement("div");
  info.className = "animateflow-info";
  Object.assign(info.style, {
    flex: "0 0 auto", font: `11px/${INFO_LINE_HEIGHT}px sans-serif`, color: "var(--descrip-text, #999)",
    padding: "2px 4px", overflowWrap: "anywhere", userSelect: "text",
  });
  container.append(media, info);
  const widget = node.addDOMWidget(WIDGET_NAME, "preview", container, { serialize: false, hideOnZoom: false });
  widget.serialize = false;
  widget.computeLayoutSize = () => {
    const aspect = node.animateflowAspect;
    const width = node.size?.[0] ?? 256;
    const infoHeight = info.childElementCount * INFO_LINE_HEIGHT + (info.childElementCount ? 4 : 0);
    const mediaHeight = aspect ? Math.max(width / aspect, MIN_HEIGHT) : media.childElementCount ? MIN_HEIGHT : 0;
    return { minHeight: mediaHeight + infoHeight, minWidth: 64 };
  };
  node.animateflowPreview = { container, media, info, listeners: new AbortController() };
  return node.animateflowPreview;
}

function createElement(item, poster) {
  const element = document.createElement(isVideo(item) ? "video" : "img");
  Object.assign(element.style, {
    position: "absolute", inset: "0", width: "100%", height: "100%", objectFit: "contain",
  });
  if (isVideo(item)) {
    // The editor's own video preview options, plus muted autoplay so it plays like a GIF.
    Object.assign(element, { playsInline: true, controls: true, loop: true, muted: true, autoplay: true });
    if (poster) element.poster = viewUrl(poster);
  }
  element.dataset.filename = item.filename;
  element.dataset.format = item.format ?? "";
  return element;
}

function fitNode(node) {
  const wanted = node.computeSize?.();
  if (wanted && wanted[1] > node.size[1]) node.setSize([node.size[0], wanted[1]]);
  node.setDirtyCanvas?.(true, true);
}

function showInfo(node, lines) {
  const { info } = ensureContainer(node);
  info.replaceChildren(...(lines ?? []).map((line) => {
    const row = document.createElement("div");
    row.textContent = line;
    return row;
  }));
}

function unload(media) {
  for (const element of media.querySelectorAll("video, img")) {
    element.removeAttribute("src");
    if (element instanceof HTMLVideoElement) element.load(); // stops the download and frees the decoder
  }
  media.replaceChildren();
}

function release(node) {
  const preview = node.animateflowPreview;
  node.animateflowRemoved = true;
  if (!preview) return;
  preview.listeners.abort();
  unload(preview.media);
  delete node.animateflowPreview;
}

function showPreview(node, items, info) {
  if (node.animateflowRemoved) return;
  const { ordered, poster } = candidates(items ?? []);
  const preview = ensureContainer(node);
  const { media } = preview;
  preview.listeners.abort(); // the previous result's element and its listeners go
  preview.listeners = new AbortController();
  const { signal } = preview.listeners;
  unload(media);
  showInfo(node, info);
  const stamp = Date.now(); // a rerun may write the same name again: never show a cached older file
  const show = (index) => {
    if (index >= ordered.length) {
      unload(media);
      fitNode(node);
      return;
    }
    const item = ordered[index];
    const element = createElement(item, poster);
    element.addEventListener("error", () => show(index + 1), { signal });
    if (element instanceof HTMLVideoElement) {
      element.addEventListener("loadedmetadata", () => setAspect(node, element.videoWidth, element.videoHeight),
                               { signal });
    } else {
      element.addEventListener("load", () => setAspect(node, element.naturalWidth, element.naturalHeight), { signal });
    }
    element.src = `${viewUrl(item)}&t=${stamp}`;
    media.replaceChildren(element);
  };
  show(0);
  fitNode(node);
}

function setAspect(node, width, height) {
  if (!width || !height) return;
  node.animateflowAspect = width / height;
  fitNode(node);
}

async function exists(item) {
  try {
    let response = await fetch(viewUrl(item), { method: "HEAD", cache: "no-store" });
    if (response.status === 405) response = await fetch(viewUrl(item), { cache: "no-store" });
    return response.ok;
  } catch {
    return false;
  }
}

// A reopened workflow: show the stored result if any of its files is still there; forget it otherwise.
async function restore(node) {
  const stored = node.properties?.[PROPERTY];
  if (!stored?.items?.length) return;
  const found = await Promise.all(stored.items.map(exists));
  if (node.animateflowRemoved) return;
  const items = stored.items.filter((_, index) => found[index]);
  if (!items.some((item) => !isPoster(item))) {
    delete node.properties[PROPERTY];
    return;
  }
  showPreview(node, items, stored.info);
}

app.registerExtension({
  name: "AnimateFlow.VideoPreview",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== NODE_TYPE) return;
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (output) {
      onExecuted?.apply(this, arguments);
      if (!output?.animateflow?.length) return;
      const items = output.animateflow.map(({ filename, subfolder, type, format, mime, role }) =>
        ({ filename, subfolder, type, format, mime, role }));
      const info = output.animateflow_info ?? [];
      this.properties = this.properties ?? {};
      this.properties[PROPERTY] = { items, info };
      showPreview(this, items, info);
    };
    const onRemoved = nodeType.prototype.onRemoved;
    nodeType.prototype.onRemoved = function () {
      release(this);
      return onRemoved?.apply(this, arguments);
    };
    const onConfigure = nodeType.prototype.onConfigure;
    nodeType.prototype.onConfigure = function () {
      const result = onConfigure?.apply(this, arguments);
      restore(this);
      return result;
    };
  },
});
