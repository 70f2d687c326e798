"""Convert a workflow made for the leading AnimateDiff pack / VideoHelperSuite into one with our nodes.

Reads both formats ComfyUI saves: the editor's UI format (`nodes` + `links`, widget values by position or, for
VideoHelperSuite, by name; subgraph definitions too) and the prompt API format (`{id: {class_type, inputs}}`, ids
of any kind, often only the inputs that differ from the defaults). Every node of theirs is either replaced through
`table.RULES` or named in the report; every setting or link that does not carry over is named in the report too.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from typing import Any

from .rule import Context, Rule
from .table import RULES, is_theirs
from .targets import TARGETS, Target


@dataclass
class NodeReport:
    node_id: str
    old_type: str
    new_type: str | None
    """None: a node of theirs with no replacement, left as it was."""
    notes: list[str] = field(default_factory=list)


@dataclass
class Report:
    nodes: list[NodeReport] = field(default_factory=list)

    @property
    def converted(self) -> list[NodeReport]:
        return [n for n in self.nodes if n.new_type is not None]

    @property
    def unknown(self) -> list[NodeReport]:
        return [n for n in self.nodes if n.new_type is None]

    def lines(self) -> list[str]:
        out = [f"Replaced {len(self.converted)} node(s) of the leading AnimateDiff pack / VideoHelperSuite with "
               f"AnimateFlow's or ComfyUI's own; {len(self.unknown)} of theirs have no replacement and were left as "
               "they were."]
        for node in self.nodes:
            if node.new_type is None:
                out.append(f"node {node.node_id}: {node.old_type} has no replacement here; left as it was "
                           "(install its pack, or rebuild this part of the graph by hand)")
                continue
            out.append(f"node {node.node_id}: {node.old_type} → {node.new_type}")
            out.extend(f"  - {note}" for note in node.notes)
        return out

    def as_dict(self) -> dict:
        return {"nodes": [vars(n) for n in self.nodes]}


_KIND = {bool: "bool", int: "number", float: "number", str: "str", dict: "dict", list: "list", type(None): "none"}


def _kind(value: Any) -> str:
    return _KIND.get(type(value), "other")


def _plausible(rule: Rule, name: str, value: Any) -> bool:
    name = rule.aliases.get(name, name)
    if name not in rule.defaults:
        return name not in rule.ui_only or _kind(value) in ("dict", "str", "none")
    expected = _kind(rule.defaults[name])
    return _kind(value) == expected or {expected, _kind(value)} == {"number"}


def read_widgets(rule: Rule, values: Any) -> tuple[dict[str, Any], list[str]]:
    """Their saved widget values by (current) name, from a name → value dict or a positional list of any version."""
    notes: list[str] = []
    if isinstance(values, dict):
        return {rule.aliases.get(k, k): v for k, v in values.items()}, notes
    values = list(values or [])
    if rule.tail is not None:
        base = rule.layouts[0]
        named = {rule.aliases.get(n, n): v for n, v in zip(base, values)}
        rule.tail(named, values[len(base):])
        return named, notes

    def score(layout: tuple[str, ...]) -> tuple[int, int, int]:
        fits = sum(_plausible(rule, n, v) for n, v in zip(layout, values))
        return (len(layout) == len(values), fits - abs(len(layout) - len(values)), -abs(len(layout) - len(values)))

    layout = max(rule.layouts, key=score)
    named = {rule.aliases.get(n, n): v for n, v in zip(layout, values)}
    if len(values) > len(layout):
        extra = [v for v in values[len(layout):] if not isinstance(v, dict)]
        if extra:
            notes.append(f"saved widget values {extra!r} beyond the known settings were dropped")
    if len(layout) == len(values) and not all(_plausible(rule, n, v) for n, v in zip(layout, values)):
        notes.append("saved widget values did not match any known version of this node; read them in the newest "
                     "order (check the settings)")
    return named, notes


def translate(rule: Rule, saved: dict[str, Any], connected: set[str],
              link_types: dict[str, str | None] | None = None) -> Context:
    """Their settings (saved over their defaults) → our widget values, link map and notes."""
    known = set(rule.widget_names()) | set(rule.links) | set(rule.defaults) | rule.ui_only | rule.extra_widgets
    old = dict(rule.defaults)
    unknown = []
    for name, value in saved.items():
        name = rule.aliases.get(name, name)
        if name in known:
            old[name] = value
        elif not name.startswith("_"):
            unknown.append(f"{name} = {value!r}")
        else:
            old[name] = value
    new = {ours: old[theirs] for theirs, ours in rule.copy.items() if theirs in old}
    new.update(rule.fixed)
    ctx = Context(old=old, new=new, connected=connected, links=dict(rule.links), link_types=dict(link_types or {}))
    if rule.translate is not None:
        rule.translate(ctx)
    ctx.notes.extend(f"setting {u} is unknown to the converter and was dropped" for u in unknown)
    return ctx


def _link_target(rule: Rule, ctx: Context, name: str) -> str | None:
    """Where a link into their input `name` goes on our node (a socket, or a widget driven by a link)."""
    if name in ctx.links:
        return ctx.links[name]
    return rule.copy.get(name)


def _mentioned(notes: list[str], name: str) -> bool:
    return any(n.startswith((f"{name}:", f"{name} ")) for n in notes)


def _widget_values(target: Target, new: dict[str, Any]) -> list[Any]:
    return [new.get(name, "" if default is None else default) for name, default in target.widgets]


def _widget_type(value: Any) -> str:
    return {bool: "BOOLEAN", int: "INT", float: "FLOAT", str: "STRING"}.get(type(value), "COMBO")


# --- the editor's UI format -------------------------------------------------------------------------------------

class Links:
    """A graph's links, stored as [id, origin, origin_slot, target, target_slot, type] lists or as dicts."""

    FIELDS = ("id", "origin_id", "origin_slot", "target_id", "target_slot", "type")

    def __init__(self, graph: dict):
        self.graph = graph
        self.items = graph.get("links") or []
        self.by_id = {self.get(link, "id"): link for link in self.items}

    def get(self, link, name: str):
        return link[name] if isinstance(link, dict) else link[self.FIELDS.index(name)]

    def origin(self, link_id) -> tuple[Any, Any] | None:
        """(sending node id, its output slot) of a link, None for an unknown link."""
        link = self.by_id.get(link_id)
        return None if link is None else (self.get(link, "origin_id"), self.get(link, "origin_slot"))

    def type_of(self, link_id) -> str | None:
        link = self.by_id.get(link_id)
        kind = self.get(link, "type") if link is not None else None
        return kind if isinstance(kind, str) and kind != "*" else None

    def set(self, link_id, name: str, value) -> None:
        link = self.by_id.get(link_id)
        if link is None:
            return
        if isinstance(link, dict):
            link[name] = value
        else:
            link[self.FIELDS.index(name)] = value

    def remove(self, link_id, nodes: dict) -> None:
        link = self.by_id.pop(link_id, None)
        if link is None:
            return
        self.items.remove(link)
        origin = nodes.get(self.get(link, "origin_id"))
        if origin is not None:
            for output in origin.get("outputs") or []:
                if link_id in (output.get("links") or []):
                    output["links"].remove(link_id)
        target = nodes.get(self.get(link, "target_id"))
        if target is not None:
            for inp in target.get("inputs") or []:
                if inp.get("link") == link_id:
                    inp["link"] = None


def _rename_primitive_widget(links: Links, nodes: dict, link_id, name: str) -> None:
    """A Primitive node driving a widget names it on its output; keep that name in step with ours."""
    link = links.by_id.get(link_id)
    origin = nodes.get(links.get(link, "origin_id")) if link is not None else None
    outputs = (origin or {}).get("outputs") or []
    slot = links.get(link, "origin_slot") if link is not None else None
    if isinstance(slot, int) and slot < len(outputs) and isinstance(outputs[slot].get("widget"), dict):
        outputs[slot]["widget"]["name"] = name


def _convert_ui_node(node: dict, rule: Rule, links: Links, nodes: dict, report: NodeReport) -> list:
    """Rewrite one node in place; returns the ids of links that no longer have an end."""
    target = TARGETS[rule.target]
    saved, notes = read_widgets(rule, node.get("widgets_values"))
    old_inputs = [i for i in node.get("inputs") or [] if i.get("link") is not None]
    link_types = {rule.aliases.get(i["name"], i["name"]): links.type_of(i["link"]) for i in old_inputs}
    ctx = translate(rule, saved, set(link_types), link_types)
    report.notes.extend(notes + ctx.notes)
    dropped = []
    inputs = [{"name": name, "type": kind, "link": None} for name, kind in target.sockets]
    for inp in old_inputs:
        name = rule.aliases.get(inp["name"], inp["name"])
        ours = _link_target(rule, ctx, name)
        slot = next((i for i, s in enumerate(inputs) if s["name"] == ours), None)
        if slot is None and ours in target.widget_names():
            inputs.append({"name": ours, "type": _widget_type(ctx.new.get(ours)), "widget": {"name": ours},
                           "link": None})
            slot = len(inputs) - 1
            _rename_primitive_widget(links, nodes, inp["link"], ours)
        if slot is None:
            dropped.append(inp["link"])
            if not _mentioned(report.notes, name):
                report.notes.append(f"{name}: no equivalent input here; its link is removed")
            continue
        inputs[slot]["link"] = inp["link"]
        links.set(inp["link"], "target_slot", slot)
        links.set(inp["link"], "type", inputs[slot]["type"])
    outputs = [{"name": name, "type": kind, "links": [], "slot_index": j}
               for j, (name, kind) in enumerate(target.outputs)]
    for i, out in enumerate(node.get("outputs") or []):
        ids = [x for x in out.get("links") or []]
        if not ids:
            continue
        j = rule.outputs.get(i)
        if j is None:
            dropped.extend(ids)
            report.notes.append(f"output {out.get('name', i)!r}: no equivalent output here; "
                                f"{len(ids)} link(s) from it removed")
            continue
        outputs[j]["links"].extend(ids)
        for link_id in ids:
            links.set(link_id, "origin_slot", j)
            links.set(link_id, "type", outputs[j]["type"])
    node["type"] = rule.target
    node["inputs"], node["outputs"] = inputs, outputs
    node["widgets_values"] = _widget_values(target, ctx.new)
    node.setdefault("properties", {})["Node name for S&R"] = rule.target
    return dropped


def _convert_graph(graph: dict, report: Report, scope: str, installed: Container[str]) -> None:
    nodes = {node.get("id"): node for node in graph.get("nodes") or []}
    links = Links(graph)
    dropped = []
    for node_id, node in nodes.items():
        kind = node.get("type", "")
        label = f"{scope}{node_id}"
        if kind in installed:
            continue
        if kind in RULES:
            entry = NodeReport(label, kind, RULES[kind].target)
            dropped += _convert_ui_node(node, RULES[kind], links, nodes, entry)
            report.nodes.append(entry)
        elif is_theirs(kind):
            report.nodes.append(NodeReport(label, kind, None))
    for link_id in dropped:
        links.remove(link_id, nodes)


def convert_ui(workflow: dict, installed: Container[str] = ()) -> tuple[dict, Report]:
    result, report = copy.deepcopy(workflow), Report()
    _convert_graph(result, report, "", installed)
    for sub in (result.get("definitions") or {}).get("subgraphs") or []:
        _convert_graph(sub, report, f"{sub.get('name') or sub.get('id')}/", installed)
    return result, report


# --- the prompt API format --------------------------------------------------------------------------------------

def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[1], int) and not isinstance(value[1], bool)


def convert_api(prompt: dict, installed: Container[str] = (),
                output_type: Callable[[str, int], str | None] | None = None) -> tuple[dict, Report]:
    """`output_type(node type, slot)` says what a sending node's output is, where known (the server knows every
    installed node's; a file alone does not): it decides between readings that depend on what is linked."""
    result, report = copy.deepcopy(prompt), Report()
    remap: dict[str, tuple[Rule, NodeReport]] = {}
    for node_id, node in result.items():
        kind = node.get("class_type", "") if isinstance(node, dict) else ""
        if kind in installed:
            continue
        if kind not in RULES:
            if is_theirs(kind):
                report.nodes.append(NodeReport(str(node_id), kind, None))
            continue
        rule, target = RULES[kind], TARGETS[RULES[kind].target]
        entry = NodeReport(str(node_id), kind, rule.target)
        inputs = node.get("inputs") or {}
        values = {k: v for k, v in inputs.items() if not _is_link(v)}
        linked = {rule.aliases.get(k, k): v for k, v in inputs.items() if _is_link(v)}
        link_types = {name: _sent_type(prompt, link, output_type) for name, link in linked.items()}
        ctx = translate(rule, {k: v for k, v in values.items() if k not in rule.ui_only}, set(linked), link_types)
        entry.notes.extend(ctx.notes)
        new_inputs = {name: ctx.new[name] if name in ctx.new else default
                      for name, default in target.widgets if name in ctx.new or default is not None}
        for name, link in linked.items():
            ours = _link_target(rule, ctx, name)
            if ours is None or (ours not in target.widget_names() and target.socket_type(ours) is None):
                if not _mentioned(entry.notes, name):
                    entry.notes.append(f"{name}: no equivalent input here; its link is removed")
                continue
            new_inputs[ours] = link
        node["class_type"] = rule.target
        node["inputs"] = new_inputs
        remap[str(node_id)] = (rule, entry)
        report.nodes.append(entry)
    for node_id, node in result.items():
        inputs = node.get("inputs") if isinstance(node, dict) else None
        for name, value in list((inputs or {}).items()):
            if not _is_link(value) or str(value[0]) not in remap:
                continue
            rule, entry = remap[str(value[0])]
            slot = rule.outputs.get(value[1])
            if slot is None:
                del inputs[name]
                entry.notes.append(f"output {value[1]}: no equivalent output here; the link into node {node_id}'s "
                                   f"{name} is removed")
            else:
                inputs[name] = [value[0], slot]
    return result, report


def _sent_type(prompt: dict, link: list, output_type: Callable[[str, int], str | None] | None) -> str | None:
    sender = prompt.get(str(link[0])) if output_type is not None else None
    kind = sender.get("class_type") if isinstance(sender, dict) else None
    return output_type(kind, link[1]) if isinstance(kind, str) else None


def is_api_format(data: dict) -> bool:
    return "nodes" not in data and all(isinstance(v, dict) and "class_type" in v for v in data.values()) and bool(data)


def convert_workflow(data: dict, installed: Container[str] = (),
                     output_type: Callable[[str, int], str | None] | None = None) -> tuple[dict, Report]:
    """Either format; raises ValueError for anything that is neither. Node types in `installed` are left as they
    are: on a server where the leading pack or VideoHelperSuite is installed, their nodes still run as theirs."""
    if isinstance(data, dict) and isinstance(data.get("nodes"), list):
        return convert_ui(data, installed)
    if isinstance(data, dict) and is_api_format(data):
        return convert_api(data, installed, output_type)
    raise ValueError("not a ComfyUI workflow: expected the editor's format (a 'nodes' list) or the prompt API "
                     "format ({id: {'class_type': ..., 'inputs': ...}})")
