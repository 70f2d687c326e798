"""Example workflows in both formats: the editor's UI format and the prompt API format.

The API twins in `example_workflows/api/<name>.json` are written by hand (they are what tests and the demo
queue; a subfolder, so the editor's template browser, which lists `example_workflows/*.json`, shows only
the UI files). The UI-format files `example_workflows/<name>.json` are generated from them with the node schemas of a running server, so
the two can never disagree: `python scripts/workflows.py` rewrites every UI file from its twin.
`ui_to_api` converts back the way the editor does when it queues, for tests.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

EXAMPLES = REPO_ROOT / "example_workflows"
NODE_WIDTH = 340
COLUMN_GAP = 60
CHAR_WIDTH = 9.5  # a widget row's label and value, in the editor's widget font, per character
TITLE_CHAR_WIDTH = 7.5  # the title bar's font, per character


def _input_specs(spec: dict) -> list[tuple[str, list]]:
    order = spec.get("input_order", {})
    out = []
    for section in ("required", "optional"):
        entries = spec["input"].get(section, {})
        for name in order.get(section, list(entries)):
            out.append((name, entries[name]))
    return out


def _is_widget(entry: list) -> bool:
    """Combos (a list of options) and the primitive types are widgets; every other type is a link slot."""
    kind = entry[0]
    return isinstance(kind, list) or kind in ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")


def _has_control(entry: list) -> bool:
    options = entry[1] if len(entry) > 1 else {}
    return bool(options.get("control_after_generate"))


def _depths(api: dict) -> dict[str, int]:
    depth: dict[str, int] = {}

    def visit(node_id: str) -> int:
        if node_id not in depth:
            parents = [v[0] for v in api[node_id]["inputs"].values() if isinstance(v, list)]
            depth[node_id] = 1 + max((visit(p) for p in parents), default=-1)
        return depth[node_id]

    for node_id in api:
        visit(node_id)
    return depth


def _height(node: dict, spec: dict) -> int:
    """The classic editor's height for the node: a row per slot, widget value and output, plus the title."""
    rows = len(spec["output"])
    for name, entry in _input_specs(spec):
        linked = isinstance(node["inputs"].get(name), list)
        if _is_widget(entry):
            rows += linked + 1 + _has_control(entry)
        else:
            rows += 1
    return 60 + 26 * rows


def _width(node: dict, spec: dict) -> int:
    """Wide enough for the title and the longest widget row (its name and its value, e.g. a long model file name),
    which the editor would otherwise widen the node to fit, over the next column."""
    title = node.get("_meta", {}).get("title") or spec.get("display_name") or ""
    rows = []
    for name, entry in _input_specs(spec):
        options = entry[1] if len(entry) > 1 else {}
        value = node["inputs"].get(name, options.get("default", ""))
        if _is_widget(entry) and not isinstance(value, list) and not options.get("multiline"):
            rows.append(len(name) + len(str(value)))
    return max([NODE_WIDTH, int(TITLE_CHAR_WIDTH * len(title)) + 20] + [int(CHAR_WIDTH * chars) + 20 for chars in rows])


def _grows(spec: dict) -> bool:
    """A node the editor makes taller once it shows a picture or a video: one with an upload input (its preview
    appears when the file loads) or an output node (its result appears after a run)."""
    options = [entry[1] for _, entry in _input_specs(spec) if len(entry) > 1 and isinstance(entry[1], dict)]
    return bool(spec.get("output_node")) or any(key.endswith("_upload") and value
                                                 for option in options for key, value in option.items())


def api_to_ui(api: dict, object_info: dict) -> dict:
    """Lay an API-format graph out as a UI-format workflow, columns by dependency depth. In each column a node that
    grows with its preview comes last, so that it grows into free space in both of the editor's node renderings
    instead of over the node below it."""
    depth = _depths(api)
    placed = sorted(api, key=lambda n: (depth[n], _grows(object_info[api[n]["class_type"]]), int(n)))
    widths = {n: _width(api[n], object_info[api[n]["class_type"]]) for n in api}
    columns = range(max(depth.values(), default=-1) + 1)
    column_width = {c: max(w for n, w in widths.items() if depth[n] == c) for c in columns}
    column_x = {c: 40 + sum(column_width[k] + COLUMN_GAP for k in range(c)) for c in columns}
    rows: dict[int, int] = {}
    positions: dict[str, list[int]] = {}
    for node_id in placed:
        node = api[node_id]
        spec = object_info[node["class_type"]]
        column = depth[node_id]
        row = rows.get(column, 0)
        rows[column] = row + _height(node, spec) + 40
        positions[node_id] = [column_x[column], 40 + row]
    nodes, links = [], []
    outgoing: dict[tuple[int, int], list[int]] = {}
    ids = {node_id: int(node_id) for node_id in api}
    for node_id, node in api.items():
        for value in node["inputs"].values():
            if isinstance(value, list):
                link_id = len(links) + 1
                links.append([link_id, ids[value[0]], value[1], ids[node_id], None, None])
                outgoing.setdefault((ids[value[0]], value[1]), []).append(link_id)
    link_by_target = {}
    for link in links:
        link_by_target.setdefault(link[3], []).append(link)

    for order, node_id in enumerate(sorted(api, key=lambda n: (depth[n], int(n)))):
        node = api[node_id]
        spec = object_info[node["class_type"]]
        inputs, widgets = [], []
        for name, entry in _input_specs(spec):
            value = node["inputs"].get(name)
            if isinstance(value, list):
                link = next(l for l in link_by_target[ids[node_id]] if l[1] == ids[value[0]] and l[2] == value[1]
                            and l[4] is None)
                link[4] = len(inputs)
                link[5] = object_info[api[value[0]]["class_type"]]["output"][value[1]]
                slot = {"name": name, "type": link[5], "link": link[0]}
                if _is_widget(entry):
                    # A widget converted to an input keeps its place (and a value) in widgets_values.
                    slot["widget"] = {"name": name}
                    widgets.append((entry[1] if len(entry) > 1 else {}).get("default"))
                    if _has_control(entry):
                        widgets.append("fixed")
                inputs.append(slot)
            elif _is_widget(entry):
                widgets.append(value if name in node["inputs"] else (entry[1] if len(entry) > 1 else {}).get("default"))
                if _has_control(entry):
                    widgets.append("fixed")
            else:
                inputs.append({"name": name, "type": entry[0], "link": None})
        outputs = [{"name": out_name, "type": out_type, "links": outgoing.get((ids[node_id], i), []), "slot_index": i}
                   for i, (out_name, out_type) in enumerate(zip(spec["output_name"], spec["output"]))]
        nodes.append({
            "id": ids[node_id], "type": node["class_type"], "pos": positions[node_id],
            "size": [widths[node_id], _height(node, spec)], "flags": {}, "order": order, "mode": 0,
            "inputs": inputs, "outputs": outputs,
            "properties": {"Node name for S&R": node["class_type"]},
            "widgets_values": widgets,
            **({"title": node["_meta"]["title"]} if node.get("_meta", {}).get("title") else {}),
        })
    return {
        "last_node_id": max(ids.values()), "last_link_id": len(links), "nodes": nodes, "links": links,
        "groups": [], "config": {}, "extra": {}, "version": 0.4,
    }


def ui_to_api(ui: dict, object_info: dict) -> dict:
    """What the editor queues for a UI-format workflow: widget values by name, links as [node, slot]."""
    links = {link[0]: link for link in ui["links"]}
    api = {}
    for node in ui["nodes"]:
        if node.get("mode", 0) != 0:
            continue
        spec = object_info[node["type"]]
        linked = {slot["name"]: links[slot["link"]] for slot in node.get("inputs", []) if slot.get("link") is not None}
        values = list(node.get("widgets_values", []))
        inputs = {}
        optional = spec["input"].get("optional", {})
        for name, entry in _input_specs(spec):
            if name in linked:
                link = linked[name]
                inputs[name] = [str(link[1]), link[2]]
                if _is_widget(entry):
                    values.pop(0)
                    if _has_control(entry):
                        values.pop(0)
            elif _is_widget(entry):
                if not values and name in optional and "default" in (entry[1] if len(entry) > 1 else {}):
                    # A workflow saved before this optional input existed: the editor gives it its default.
                    inputs[name] = entry[1]["default"]
                    continue
                if not values:
                    # A workflow saved before the node gained this widget: the editor leaves it at its default.
                    options = entry[1] if len(entry) > 1 else {}
                    if name in spec["input"].get("optional", {}) and "default" in options:
                        inputs[name] = options["default"]
                        continue
                    raise ValueError(f"node {node['id']} ({node['type']}): no widget value for {name}")
                inputs[name] = values.pop(0)
                if _has_control(entry):
                    values.pop(0)
        api[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return api


def strip_meta(api: dict) -> dict:
    return {k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in api.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description="Regenerate the UI-format example workflows from their API twins.")
    parser.add_argument("--base", type=Path, default=REPO_ROOT / ".work" / "test-base")
    args = parser.parse_args()
    from scripts import comfy_host

    with comfy_host.ComfyServer(args.base.resolve()) as client:
        info = client.object_info()
    for api_path in sorted((EXAMPLES / "api").glob("*.json")):
        ui_path = EXAMPLES / api_path.name
        ui = api_to_ui(json.loads(api_path.read_text()), info)
        ui_path.write_text(json.dumps(ui, indent=1) + "\n")
        print(ui_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
