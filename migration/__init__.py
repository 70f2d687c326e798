"""Migration from the leading AnimateDiff pack (ADE_…) and VideoHelperSuite (VHS_…) to AnimateFlow's nodes.

`table.RULES` maps each of their node types to one of ours; `convert.convert_workflow` applies it to a workflow
file (also `python -m migration`), and `registration` offers it to the editor's missing-nodes dialog as node
replacements on hosts that have them. Pure Python apart from registration's feature-detected host import.
"""

from .convert import Report, convert_workflow
from .table import RULES

__all__ = ["RULES", "Report", "convert_workflow"]
