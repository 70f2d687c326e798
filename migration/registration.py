"""Offer the table to the editor's missing-nodes dialog as node replacements, where the host has them.

ComfyUI 0.14 added `io.NodeReplace` and `ComfyAPI().node_replacement.register`: the editor then offers "Replace"
for a missing node type and moves widget values (by position, through `old_widget_ids`) and links (by input name
and output slot). Older hosts have neither, and nothing is registered there.

What a replacement can express is a subset of the converter: copies, fixed values, links. Their value vocabulary
is kept valid on our side instead: the combined nodes accept the leading pack's beta schedule names, for example.
VideoHelperSuite saves its widget values as a dict by name, which the editor cannot read by position: our editor
extension sets the converter's values on the replaced nodes instead (server_hooks.py, web/migration_values.js).
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


def replacement(rule: Rule):
    """The host bridge's Replacement for one rule (host/node_replace.py turns it into the host's NodeReplace)."""
    from ..host.node_replace import Replacement

    fields = replacement_fields(rule)
    return Replacement(
        old_id=fields["old_node_id"], new_id=fields["new_node_id"], widget_ids=tuple(fields["old_widget_ids"] or ()),
        inputs={m["new_id"]: m["old_id"] for m in fields["input_mapping"] or () if "old_id" in m},
        values={m["new_id"]: m["set_value"] for m in fields["input_mapping"] or () if "set_value" in m},
        outputs={m["old_idx"]: m["new_idx"] for m in fields["output_mapping"] or ()})


async def register_replacements() -> int:
    """Register every rule on a host that supports it; returns how many were registered (0 on older hosts)."""
    from ..host import node_replace

    try:
        count = await node_replace.register(replacement(rule) for rule in RULES.values())
    except Exception:  # the host changed its API: the pack still loads, the editor just offers no Replace
        log.warning("AnimateFlow: could not register node replacements on this host", exc_info=True)
        return 0
    if count:
        log.info("AnimateFlow: offered %d replacements for the leading AnimateDiff pack's and VideoHelperSuite's "
                 "nodes", count)
    return count
