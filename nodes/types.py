"""The pack's custom socket types, declared once.

The names carry our prefix so the editor never lets a user wire our objects into another pack's node (or theirs into
ours): the leading AnimateDiff pack also has a CONTEXT_OPTIONS and a MOTION_MODULE, holding objects ours cannot use.
"""

from comfy_api.latest import io

CONTEXT_OPTIONS = "ANIMATEFLOW_CONTEXT_OPTIONS"
MOTION_MODULE = "ANIMATEFLOW_MOTION_MODULE"
MOTION_SCALE = "ANIMATEFLOW_MOTION_SCALE"
VIDEO_INFO = "ANIMATEFLOW_VIDEO_INFO"

ContextOptionsType = io.Custom(CONTEXT_OPTIONS)
MotionModuleType = io.Custom(MOTION_MODULE)
MotionScaleType = io.Custom(MOTION_SCALE)
VideoInfoType = io.Custom(VIDEO_INFO)


class ForeignObjectError(ValueError):
    """An input got an object from another pack (or a hand-made prompt) that only looks like ours."""


def require_motion_module(value: object, node: str, input_name: str = "motion_module"):
    """The refusal Context Options already has, for the motion module input."""
    from ..motion.loader import MotionModule

    if not isinstance(value, MotionModule):
        raise ForeignObjectError(
            f"{node}: {input_name} must come from this pack's Load Motion Module or Motion LoRA Loader node "
            f"(AnimateFlow), not {type(value).__module__}.{type(value).__name__}; replace the connected node.")
    return value
