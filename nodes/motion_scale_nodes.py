"""Motion Scale Schedule: motion_scale per frame, per UNet block and per region, for Apply Motion Module."""

from __future__ import annotations

from comfy_api.latest import io

from ..motion import scale_schedule
from .common import CATEGORY, display_name, node_id, require_finite, search_aliases, validate_floats
from .types import MotionScaleType


class MotionScaleScheduleNode(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=node_id("MotionScaleSchedule"),
            **search_aliases("Multival", "motion scale", "AnimateDiff scale"),
            display_name=display_name("Motion Scale Schedule"),
            category=CATEGORY,
            description="Varies how much motion the motion module adds, over the frames (keyframes or one value "
                        "per frame), per UNet block (down / mid / up) and per region (a mask). Connect to Apply "
                        "Motion Module's motion_scale_schedule; it multiplies that node's motion_scale.",
            inputs=[
                io.String.Input("schedule", multiline=True, default="0: 1.0",
                                tooltip="'frame: scale' keyframes such as '0: 1.0, 16: 0.3' (frames count from 0; "
                                        "held before the first and after the last keyframe), or a plain list "
                                        "'1.0, 0.9, 0.8' giving frame i the i-th value (the last one held). "
                                        "Commas, semicolons or new lines separate items."),
                io.Combo.Input("interpolation", options=list(scale_schedule.INTERPOLATIONS), default="linear",
                               tooltip="Between two keyframes: linear, ease_in_out (cosine) or hold (keep the "
                                       "earlier keyframe's value until the next)."),
                io.Float.Input("down", default=1.0, min=0.0, max=10.0, step=0.01,
                               tooltip="Multiplier for the motion modules in the UNet's down blocks (fine detail "
                                       "at high resolution first)."),
                io.Float.Input("mid", default=1.0, min=0.0, max=10.0, step=0.01,
                               tooltip="Multiplier for the mid block's motion module (v2 modules only)."),
                io.Float.Input("up", default=1.0, min=0.0, max=10.0, step=0.01,
                               tooltip="Multiplier for the motion modules in the UNet's up blocks."),
                io.Float.Input("frame_scales", optional=True, force_input=True,
                               tooltip="Optional FLOAT list or batch with one value per frame from another node; "
                                       "replaces schedule."),
                io.Mask.Input("mask", optional=True,
                              tooltip="Optional mask: motion is scaled by the mask's value per pixel (1 keeps it, "
                                      "0 removes it), resized to each block's resolution. A batch gives each frame "
                                      "its own mask (the last one repeats)."),
            ],
            outputs=[MotionScaleType.Output(display_name="MOTION_SCALE",
                                            tooltip="For Apply Motion Module's motion_scale_schedule input.")],
        )

    @classmethod
    def validate_inputs(cls, down=None, mid=None, up=None, frame_scales=None) -> bool | str:
        # frame_scales normally comes over a link (a list or batch, checked in execute); a prompt may also give one
        # number for all frames, which is checked here like a widget.
        single = frame_scales if isinstance(frame_scales, (int, float)) else None
        return validate_floats(cls, down=down, mid=mid, up=up, frame_scales=single)

    @classmethod
    def execute(cls, schedule: str, interpolation: str, down: float, mid: float, up: float, frame_scales=None,
                mask=None) -> io.NodeOutput:
        require_finite(cls, down=down, mid=mid, up=up)
        keyframes = (scale_schedule.values_from_list(frame_scales) if frame_scales is not None
                     else scale_schedule.parse_schedule(schedule))
        return io.NodeOutput(scale_schedule.MotionScaleSchedule(keyframes=keyframes, interpolation=interpolation,
                                                                down=down, mid=mid, up=up, mask=mask))


NODES = [MotionScaleScheduleNode]
