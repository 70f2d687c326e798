"""Node replacements: the host's own way to open a workflow of another pack's nodes with ours in their place.

From ComfyUI 0.14 a pack registers "old node id -> new node id" with `ComfyAPI().node_replacement.register(
io.NodeReplace(...))`; the editor then offers the swap when it opens a workflow with the old node, and the server
applies it to a queued prompt. Older hosts have neither: there `register` registers nothing and says so once,
and our converter (the same table) is the way to migrate. Told apart by what the host has, never by its version.

Our `Replacement` holds one mapping in our words, so the table that drives it never imports the host.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from .needs import Need

log = logging.getLogger(__name__)

FEATURE = "node replacements in the editor (ComfyUI 0.14 and later; the workflow converter works without them)"
NEEDS = (
    Need("comfy_api.latest:io.NodeReplace", FEATURE,
         params=("new_node_id", "old_node_id", "old_widget_ids", "input_mapping", "output_mapping"), optional=True),
    Need("comfy_api.latest:ComfyAPI_latest.NodeReplacement.register", FEATURE,
         optional=True),
)


@dataclass(frozen=True)
class Replacement:
    """Open a node of class `old_id` as one of class `new_id`.

    `widget_ids`: the old node's widget input ids in the order its saved workflow lists their values;
    `inputs`: new input id -> old input id (links and widget values carried over);
    `values`: new input id -> a value set on the new node; `outputs`: old output index -> new output index.
    """

    old_id: str
    new_id: str
    widget_ids: tuple[str, ...] = ()
    inputs: Mapping[str, str] = field(default_factory=dict)
    values: Mapping[str, Any] = field(default_factory=dict)
    outputs: Mapping[int, int] = field(default_factory=dict)


def unavailable_reason() -> str | None:
    """Why this host cannot take node replacements now, or None when it can."""
    for need in NEEDS:
        missing = need.problem()
        if missing is not None:
            return f"this ComfyUI lacks them ({missing}; they came with ComfyUI 0.14)"
    if _server() is None:
        return "no ComfyUI server is running (the server holds the replacements)"
    return None


def to_host(replacement: Replacement):
    """The host's `io.NodeReplace` for one of ours."""
    from comfy_api.latest import io

    input_mapping = [{"new_id": new, "old_id": old} for new, old in replacement.inputs.items()]
    input_mapping += [{"new_id": new, "set_value": value} for new, value in replacement.values.items()]
    output_mapping = [{"new_idx": new, "old_idx": old} for old, new in replacement.outputs.items()]
    return io.NodeReplace(new_node_id=replacement.new_id, old_node_id=replacement.old_id,
                          old_widget_ids=list(replacement.widget_ids) or None,
                          input_mapping=input_mapping or None, output_mapping=output_mapping or None)


async def register(replacements: Iterable[Replacement]) -> int:
    """Register `replacements` with the host; returns how many. On a host without the API (or without a
    server), registers none and logs one line saying why."""
    replacements = list(replacements)
    reason = unavailable_reason()
    if reason is not None:
        log.info("AnimateFlow: %d node replacements not registered: %s.", len(replacements), reason)
        return 0
    from comfy_api.latest import ComfyAPI

    api = ComfyAPI()
    for replacement in replacements:
        await api.node_replacement.register(to_host(replacement))
    return len(replacements)


def _server():
    from .server import prompt_server

    return prompt_server()
