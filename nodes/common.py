"""Names shared by every node of the pack, so ids and menus stay consistent."""

CATEGORY = "AnimateDiff"
NODE_PREFIX = "AnimateFlow_"
DISPLAY_SUFFIX = " (AnimateFlow)"


def node_id(name: str) -> str:
    return NODE_PREFIX + name


def display_name(name: str) -> str:
    return name + DISPLAY_SUFFIX
