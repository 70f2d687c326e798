// Gives the nodes the editor's Replace puts in place of the leading AnimateDiff pack's and VideoHelperSuite's
// the settings the workflow saved (ComfyUI 0.14+, whose missing-nodes panel offers Replace).
//
// Replace copies widget values by position, and VideoHelperSuite saves them by name, so its nodes arrived with
// our defaults: a saved MP4 export came back as a GIF named "AnimateFlow". When a workflow with such missing nodes
// loads, the pack's converter (POST /animateflow/migrate, the same table as `python -m migration`) says what each
// replaced node's widgets hold and where its links come from; when Replace adds our node in place of one of theirs,
// those are set, and what has no equivalent here is shown in a toast rather than dropped without a word.
//
// Replace in editor 1.58 also stops the canvas: it swaps the node inside the graph's node list without a new graph
// version, so the canvas keeps drawing the removed node from its cached render order, which throws, and the
// render loop ends there (any replacement, core's own too). A new graph version on each node added in a graph with
// missing nodes makes the canvas recompute its order.

import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { ready, t } from "./strings.js";

const ROUTE = "/animateflow/migrate";

let pending = new Map(); // node id → {type, widgets, links, notes}, for the workflow loaded last
const watched = new WeakSet();

async function convertedValues(graph) {
  const response = await api.fetchApi(ROUTE, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(graph.serialize()),
  });
  if (!response.ok) {
    console.warn(`AnimateFlow: ${ROUTE} answered ${response.status}; replaced nodes keep the editor's values`);
    return new Map();
  }
  const { nodes } = await response.json();
  return new Map(Object.entries(nodes ?? {}));
}

// Links the converter reads differently from the editor's fixed input mapping: VideoHelperSuite takes latents on
// `images` when a vae is connected, ours on `latents`. Each input gets the sender the converter chose, and a link
// the editor put elsewhere from that same sender is taken off.
function setLinks(node, entry) {
  const graph = node.graph;
  for (const [name, [originId, originSlot]] of Object.entries(entry.links ?? {})) {
    const slot = node.findInputSlot?.(name) ?? -1;
    const origin = graph?.getNodeById?.(originId);
    // A sender still missing has their output slots, not ours: the editor maps its links when it is replaced.
    if (slot < 0 || !origin || !window.LiteGraph?.registered_node_types?.[origin.type]) continue;
    const current = node.inputs[slot].link != null ? graph.getLink?.(node.inputs[slot].link) : null;
    if (current && current.origin_id === origin.id && current.origin_slot === originSlot) continue;
    node.inputs.forEach((input, index) => {
      const link = input.link != null ? graph.getLink?.(input.link) : null;
      if (index !== slot && link && link.origin_id === origin.id && link.origin_slot === originSlot
          && !(input.name in entry.links)) {
        node.disconnectInput(index);
      }
    });
    origin.connect(originSlot, node, slot);
  }
}

function setValues(node, entry) {
  for (const [name, value] of Object.entries(entry.widgets)) {
    const widget = node.widgets?.find((w) => w.name === name);
    if (!widget || widget.value === value) continue;
    widget.value = value;
    try {
      widget.callback?.(value);
    } catch (error) {
      console.warn(`AnimateFlow: setting ${name} on node ${node.id}`, error);
    }
  }
  node.setDirtyCanvas?.(true, true);
  if (entry.notes?.length) {
    app.extensionManager?.toast?.add({
      severity: "warn",
      summary: t("migration.notes", { node: node.title ?? node.type, id: node.id }),
      detail: entry.notes.join("\n"),
      life: 15000,
    });
  }
}

function watch(graph) {
  if (!graph?.events?.addEventListener || watched.has(graph)) return;
  watched.add(graph);
  graph.events.addEventListener("node:added", (event) => {
    const node = event.detail?.node;
    graph.incrementVersion?.();
    const entry = node && pending.get(String(node.id));
    if (!entry || node.type !== entry.type || node.graph !== graph) return;
    pending.delete(String(node.id));
    setLinks(node, entry);
    setValues(node, entry);
  });
}

app.registerExtension({
  name: "AnimateFlow.MigrationValues",
  async afterConfigureGraph(missingNodeTypes) {
    pending = new Map();
    if (!missingNodeTypes?.length) return;
    const graph = app.rootGraph ?? app.graph;
    watch(graph);
    try { // the server knows which missing types are theirs (migration/table.py); it answers {} for none
      await ready;
      pending = await convertedValues(graph);
    } catch (error) {
      console.warn("AnimateFlow: could not ask the converter for the replaced nodes' values", error);
    }
  },
});
