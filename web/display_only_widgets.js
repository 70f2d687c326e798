// Keeps the editor's display-only DOM widgets on our nodes out of the queued prompt.
//
// The editor adds preview widgets of its own to nodes with an upload input (Load Video gets "video-preview" once
// its video loads). It sets `widget.serialize = false`, which keeps them out of the saved workflow, but
// graphToPrompt skips a widget only when `widget.options.serialize === false` (frontends 1.32 and 1.58 alike), so
// the preview went into the prompt as an input `'video-preview': ''` the node does not have. Any DOM widget on one
// of our nodes whose name is not an input of the node's definition is display only: we mark it so.

import { app } from "../../scripts/app.js";

const PREFIX = "AnimateFlow_";
const inputNamesByNode = new Map();

function markDisplayOnly(widget) {
  if (!widget) return widget;
  if (widget.options) widget.options.serialize = false;
  else widget.options = { serialize: false };
  return widget;
}

app.registerExtension({
  name: "AnimateFlow.DisplayOnlyWidgets",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!nodeData.name?.startsWith(PREFIX)) return;
    const sections = [nodeData.input?.required, nodeData.input?.optional];
    inputNamesByNode.set(nodeData.name, new Set(sections.flatMap((section) => Object.keys(section ?? {}))));
  },
  nodeCreated(node) {
    const inputs = inputNamesByNode.get(node.constructor?.comfyClass ?? node.comfyClass);
    if (!inputs || typeof node.addDOMWidget !== "function") return;
    const addDOMWidget = node.addDOMWidget;
    node.addDOMWidget = function (name, ...rest) {
      const widget = addDOMWidget.call(this, name, ...rest);
      return inputs.has(name) ? widget : markDisplayOnly(widget);
    };
  },
});
