"""Prompt Travel: a keyframed prompt schedule as one conditioning per frame (the original extension's prompt travel)."""

from __future__ import annotations

import logging

from comfy_api.latest import io, ui

from ..sampling import prompt_travel
from .common import CATEGORY, display_name, node_id, search_aliases

log = logging.getLogger(__name__)
NAME = "Prompt Travel"


class PromptTravel(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=node_id("PromptTravel"),
            **search_aliases("prompt schedule", "Batch Prompt Schedule", "AnimateDiff prompt"),
            display_name=display_name(NAME),
            category=CATEGORY,
            description="A prompt per keyframe, slerped between keyframes as the original extension does, as one "
                        "conditioning per frame. Head lines before the keyframes and tail lines after them are "
                        "added to every keyframe's prompt.",
            inputs=[
                io.Clip.Input("clip", tooltip="The text encoder."),
                io.String.Input(
                    "schedule", multiline=True, default="masterpiece, best quality\n0: a cat walking\n"
                                                        "8: a cat running\nsunny meadow",
                    tooltip="Head lines, then 'frame: prompt' lines, then tail lines (the original's format; "
                            "several 'frame: prompt' pairs may share a line, prompts may contain commas). "
                            "Also accepted: \"0\": \"prompt\", lines as pasted from other packs. A frame may be "
                            "negative (-1 is the last) or a fraction (0.5 is the middle of the video)."),
                io.Int.Input("frames", default=16, min=1, max=10000,
                             tooltip="Number of frames; must match the latent batch so each frame gets its own."),
                io.Boolean.Input("loop", default=False, optional=True,
                                 tooltip="For videos that loop (closed-loop context windows): travel from the last "
                                         "keyframe back to the first across the wrap instead of holding them."),
            ],
            outputs=[io.Conditioning.Output(tooltip="Per-frame conditioning for the sampler's positive input.")],
        )

    @classmethod
    def execute(cls, clip, schedule: str, frames: int, loop: bool = False) -> io.NodeOutput:
        keyframes = prompt_travel.resolve(prompt_travel.parse_schedule(schedule), frames)
        conds, pooled = [], []
        for _, text in keyframes.frames:
            cond, pool = clip.encode_from_tokens(clip.tokenize(text), return_pooled=True)
            conds.append(cond)
            pooled.append(pool)
        if len({c.shape for c in conds}) > 1:
            raise prompt_travel.PromptTravelError("keyframe prompts encode to different lengths (one is over 75 "
                                                  "tokens with head and tail)", "shorten it so all fit one chunk.",
                                                  input="schedule")
        plan = prompt_travel.travel_plan([f for f, _ in keyframes.frames], frames, loop)
        extra = {"pooled_output": prompt_travel.per_frame(pooled, plan)} if pooled[0] is not None else {}
        for warning in keyframes.warnings:
            log.warning("%s: %s", NAME, warning)
        report = [f"{frame}: {text}" for frame, text in keyframes.frames]
        report += [f"warning: {w}" for w in keyframes.warnings]
        return io.NodeOutput([[prompt_travel.per_frame(conds, plan), extra]], ui=ui.PreviewText("\n".join(report)))


NODES = [PromptTravel]
