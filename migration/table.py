"""The mapping table: each of their node types → one of ours, with every widget, link and output accounted for.

The editor's node replacement (registration.py) and the file converter (convert.py) both read `RULES`, so the
two never disagree. Pure Python: no ComfyUI import.
"""

from __future__ import annotations

from .ade import ADE_RULES
from .rule import Rule
from .vhs import VHS_RULES

RULES: dict[str, Rule] = {rule.old: rule for rule in (*ADE_RULES, *VHS_RULES)}

THEIR_PREFIXES = ("ADE_", "VHS_")
THEIR_UNPREFIXED = frozenset({"AnimateDiffLoaderV1", "AnimateDiffSlidingWindowOptions", "AnimateDiffModuleLoader",
                              "AnimateDiffSampler", "AnimateDiffCombine", "CheckpointLoaderSimpleWithNoiseSelect"})


def is_theirs(node_type: str) -> bool:
    """A node type of the leading pack or VideoHelperSuite (which we either replace or report)."""
    return node_type.startswith(THEIR_PREFIXES) or node_type in THEIR_UNPREFIXED
