"""The converter where users meet it without a file: prompts queued to the server, and the editor's Replace.

Queued prompts: a prompt API file made for the leading AnimateDiff pack or VideoHelperSuite, queued to a server
that has neither, runs on our nodes. The server's prompt handlers run before ComfyUI 0.14+ applies its own node
replacements, so the converter's full mapping (value vocabularies, per-format widgets, defaults an API file leaves
out) is what runs, on old hosts too. Node types the host has (their pack installed) are left to that pack.

The editor's Replace (0.14+) copies widget values by position only, and VideoHelperSuite saves its values by name,
so Replace alone gives its nodes our defaults. `POST /animateflow/migrate` converts a workflow with the same table
and says, per replaced node, our widget values and where its links come from; web/migration_values.js sets them
on the nodes the editor's Replace creates. Registered through host/server.py: in-process (tests, benchmarks)
nothing is registered.
"""

from __future__ import annotations

import logging
from typing import Any

from ..host import server as host_server
from .convert import Links, Report, convert_api, convert_workflow
from .table import RULES
from .targets import TARGETS

log = logging.getLogger(__name__)

ROUTE = "/animateflow/migrate"


def _log_report(what: str, report: Report) -> None:
    noted = any(node.notes for node in report.nodes) or report.unknown
    (log.warning if noted else log.info)("AnimateFlow: %s\n%s", what, "\n".join(report.lines()))


def sent_type(node_type: str, slot: int) -> str | None:
    """The type of an installed node's output `slot` (what a link from it carries), None when unknown."""
    outputs = host_server.node_output_types(node_type)
    return outputs[slot] if outputs is not None and isinstance(slot, int) and 0 <= slot < len(outputs) else None


def convert_queued_prompt(json_data: dict) -> dict:
    """PromptServer on_prompt handler: the prompt with every node of theirs that this host lacks on our nodes.
    Never fails the prompt: on any surprise it is passed on as it came (ComfyUI's validation then names the
    missing node types)."""
    prompt = json_data.get("prompt") if isinstance(json_data, dict) else None
    if not isinstance(prompt, dict):
        return json_data
    installed = host_server.installed_node_types()
    kinds = {node.get("class_type") for node in prompt.values() if isinstance(node, dict)}
    if not any(kind in RULES and kind not in installed for kind in kinds):
        return json_data
    try:
        converted, report = convert_api(prompt, installed, sent_type)
    except Exception:  # a prompt shape the converter does not know: validation reports it as the host would
        log.warning("AnimateFlow: could not convert a queued prompt's nodes of the leading AnimateDiff pack / "
                    "VideoHelperSuite; it is passed on unchanged", exc_info=True)
        return json_data
    _log_report("a queued prompt used nodes this server lacks; they run as AnimateFlow's:", report)
    return {**json_data, "prompt": converted}


def widget_values_by_node(converted: dict, report: Report) -> dict[str, dict[str, Any]]:
    """For each replaced node of a UI workflow's top level: our node type, the widget values the converter chose
    by name, and where each of its links comes from. Widgets without a fixed default that the converter left empty
    (a file list) are left out, so the editor keeps what it shows. Links matter where the converter reads one
    differently from the editor's fixed input mapping (latents arriving on VideoHelperSuite's `images`)."""
    replaced = {n.node_id: n for n in report.converted}
    links = Links(converted)
    values: dict[str, dict[str, Any]] = {}
    for node in converted.get("nodes") or []:
        entry = replaced.get(str(node.get("id")))
        if entry is None or node.get("type") != entry.new_type:
            continue
        saved = node.get("widgets_values") or []
        widgets = {name: value for (name, default), value in zip(TARGETS[entry.new_type].widgets, saved)
                   if not (default is None and value == "")}
        senders = {i["name"]: links.origin(i["link"]) for i in node.get("inputs") or [] if i.get("link") in links.by_id}
        values[entry.node_id] = {"type": entry.new_type, "widgets": widgets, "links": senders, "notes": entry.notes}
    return values


async def migrate_route(request):
    """POST a workflow (either format) → the converted workflow, the report, and per-node widget values."""
    from aiohttp import web

    try:
        data = await request.json()
        converted, report = convert_workflow(data, host_server.installed_node_types(), sent_type)
    except ValueError as err:  # json.JSONDecodeError included
        return web.json_response({"error": f"AnimateFlow migration: {err}"}, status=400)
    except (AttributeError, IndexError, KeyError, TypeError) as err:  # a workflow-shaped body with odd entries
        log.info("AnimateFlow: /animateflow/migrate could not read a workflow", exc_info=True)
        return web.json_response({"error": f"AnimateFlow migration: this workflow has an entry the converter cannot "
                                           f"read ({type(err).__name__}: {err}); save it again from the editor "
                                           f"it was made in"}, status=400)
    nodes = widget_values_by_node(converted, report) if isinstance(converted.get("nodes"), list) else {}
    return web.json_response({"workflow": converted, "report": report.as_dict(), "lines": report.lines(),
                              "nodes": nodes})


_registered = False


def register() -> None:
    """Once per server: the prompt handler and the route (nothing in-process)."""
    global _registered
    if _registered:
        return
    _registered = host_server.add_prompt_handler(convert_queued_prompt)
    if _registered and not host_server.add_route("POST", ROUTE, migrate_route):
        log.info("AnimateFlow: this server has no route table; the editor's Replace keeps VideoHelperSuite's "
                 "values at our defaults")
