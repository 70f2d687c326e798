"""Offer the table to the editor's missing-nodes dialog as node replacements, where the host has them.

ComfyUI 0.14 added `io.NodeReplace` and `ComfyAPI().node_replacement.register`: the editor then offers "Replace"
for a missing node type and moves widget values (by position, through `old_widget_ids`) and links (by input name
and output slot). Older hosts have neither, and nothing is registered there.

What a replacement can express is a subset of the converter: copies, fixed values, links. Their value vocabulary
is kept valid on our side instead: the combined nodes accept the leading pack's beta schedule names, for example.
VideoHelperSuite saves its widget values as a dict by name, which the editor cannot read by position, so its nodes
arrive with our defaults (the converter, `python -m migration`, carries them over).
"""

from __future__ import annotations

import logging

from .rule import Rule
from .table import RULES

log = logging.getLogger(__name__)


def replacement_fields(rule: Rule) -> dict:
    """The NodeReplace arguments for one rule (pure data, so tests can read it without a host)."""
    inputs = [{"new_id": ours, "old_id": theirs} for theirs, ours in rule.copy.items()]
    inputs += [{"new_id": ours, "set_value": value} for ours, value in rule.fixed.items()]
    copied = {m["new_id"] for m in inputs}
    inputs += [{"new_id": ours, "old_id": theirs} for theirs, ours in rule.links.items()
               if ours is not None and ours not in copied]
    outputs = [{"new_idx": ours, "old_idx": theirs} for theirs, ours in rule.outputs.items() if ours is not None]
    # The host stores an empty mapping as None ("keep slots as they are"), so say None here too.
    return {
        "new_node_id": rule.target,
        "old_node_id": rule.old,
        "old_widget_ids": list(rule.layouts[0]) or None,
        "input_mapping": inputs or None,
        "output_mapping": outputs or None,
    }


def host_supports_replacements() -> bool:
    """The API is there (ComfyUI 0.14+) and so is the server it registers with (not when imported as a library)."""
    try:
        from comfy_api.latest import ComfyAPI, io
        from server import PromptServer
    except ImportError:
        return False
    return (hasattr(io, "NodeReplace") and hasattr(ComfyAPI, "NodeReplacement")
            and getattr(PromptServer, "instance", None) is not None)


async def register_replacements() -> int:
    """Register every rule on a host that supports it; returns how many were registered (0 on older hosts)."""
    if not host_supports_replacements():
        return 0
    from comfy_api.latest import ComfyAPI, io

    api = ComfyAPI()
    try:
        for rule in RULES.values():
            await api.node_replacement.register(io.NodeReplace(**replacement_fields(rule)))
    except Exception:  # the host changed its API: the pack still loads, the editor just offers no Replace
        log.warning("AnimateFlow: could not register node replacements on this host", exc_info=True)
        return 0
    log.info("AnimateFlow: offered %d replacements for the leading AnimateDiff pack's and VideoHelperSuite's "
             "nodes", len(RULES))
    return len(RULES)
