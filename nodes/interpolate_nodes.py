"""Interpolate Frames: more frames between the generated ones (the original extension's "Interp X")."""

from __future__ import annotations

from comfy_api.latest import io

from ..host import execution
from ..media import interpolation
from .common import CATEGORY, display_name, node_id, require_finite, search_aliases, validate_floats

NAME = "Interpolate Frames"


class InterpolateFrames(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=node_id("InterpolateFrames"),
            **search_aliases("frame interpolation", "RIFE", "FILM"),
            display_name=display_name(NAME),
            category=CATEGORY,
            description="Multiplies the frame rate of an animation by inserting multiplier−1 frames between each "
                        "pair of frames: n frames become (n−1)·multiplier+1. The original frames pass through "
                        "unchanged, and the fps output is multiplied to match, so the video keeps its duration.",
            inputs=[
                io.Image.Input("images", tooltip="The frames, in order."),
                io.Int.Input("multiplier", default=2, min=2, max=16,
                             tooltip="How many frames each original frame becomes: 2 puts one new frame between "
                                     "each pair and doubles the frame rate."),
                io.Combo.Input("method", options=list(interpolation.METHODS), default="motion",
                               tooltip="motion: motion-compensated frames (ffmpeg's minterpolate), objects move "
                                       "to their in-between positions. blend: a cross-fade of the two frames, "
                                       "exact and fast, good for previews."),
                io.Float.Input("fps", default=8.0, min=0.01, max=240.0, step=0.5,
                               tooltip="Frame rate of the input frames; the fps output is this times the "
                                       "multiplier."),
                io.Boolean.Input("closed_loop", default=False,
                                 tooltip="Also interpolate from the last frame back to the first (n·multiplier "
                                         "frames), so a looping GIF has no jump where it wraps."),
            ],
            outputs=[
                io.Image.Output("interpolated_images", display_name="images",
                                tooltip="The original frames with the new frames between them."),
                io.Float.Output("interpolated_fps", display_name="fps",
                                tooltip="fps × multiplier: wire it to Video Combine's fps to keep the duration."),
            ],
        )

    @classmethod
    def validate_inputs(cls, fps=None) -> bool | str:
        return validate_floats(cls, fps=fps)

    @classmethod
    def execute(cls, images, multiplier: int, method: str, fps: float, closed_loop: bool = False) -> io.NodeOutput:
        require_finite(cls, fps=fps)
        frames = interpolation.interpolate(images, multiplier, method, node=NAME, closed_loop=closed_loop,
                                           check_interrupt=execution.check_interrupt)
        return io.NodeOutput(frames, fps * multiplier)


NODES = [InterpolateFrames]
