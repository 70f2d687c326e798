"""Migration from the leading AnimateDiff pack (ADE_…) and VideoHelperSuite (VHS_…) to AnimateFlow's nodes.

`table.RULES` maps each of their node types to one of ours; `convert.convert_workflow` applies it to a workflow
file (also `python -m migration`), `registration` offers it to the editor's missing-nodes dialog as node
replacements on hosts that have them, and `server_hooks` converts queued prompts and serves the editor's values.
Pure Python apart from those two modules' host imports.
"""

from .convert import Report, convert_workflow
from .table import RULES

__all__ = ["RULES", "Report", "convert_workflow"]
