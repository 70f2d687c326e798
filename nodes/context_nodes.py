"""Context Options (sliding windows for any number of frames) and attaching them to a model."""

from __future__ import annotations

from comfy_api.latest import io

from ..sampling.context_handler import attach_context_options
from ..sampling.context_options import FUSE_METHODS, SCHEDULES, ContextOptions, require_context_options
from .common import CATEGORY, advanced, display_name, node_id, owns_sampling, search_aliases
from .types import ContextOptionsType


class ContextOptionsNode(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=node_id("ContextOptions"),
            **search_aliases("AnimateDiff context", "Context Options Standard Uniform",
                             "Context Options Looped Uniform", "Context Options Standard Static", "sliding window"),
            display_name=display_name("Context Options"),
            category=CATEGORY,
            description="Sample any number of frames in windows the motion module can handle; overlapping windows "
                        "are blended per frame. Connect to Apply Motion Module or Set Context Options.",
            inputs=[
                io.Int.Input("context_length", default=16, min=2, max=128,
                             tooltip="Frames per window. 16 is what most motion modules were trained on."),
                io.Int.Input("context_stride", default=1, min=1, max=8,
                             tooltip="uniform/looped only: also run windows of every 2nd, 4th, ... frame up to "
                                     "2^(stride-1), which ties distant frames together.", **advanced()),
                io.Int.Input("context_overlap", default=4, min=-1, max=127,
                             tooltip="Frames shared by neighbouring windows; more blends seams better but costs "
                                     "more windows. -1 means a quarter of context_length."),
                io.Boolean.Input("closed_loop", default=False,
                                 tooltip="Let windows wrap from the last frames to the first so the video loops."),
                io.Combo.Input("schedule", options=list(SCHEDULES), default="uniform",
                               tooltip="uniform: the original extension's windows, shifted every step; "
                                       "looped: the same but windows may wrap around the end; "
                                       "static: the same fixed windows every step."),
                io.Combo.Input("fuse_method", options=list(FUSE_METHODS), default="pyramid",
                               tooltip="How overlapping windows are weighted per frame: pyramid and gaussian "
                                       "trust a window's centre over its edges, flat averages evenly, overwrite "
                                       "lets the later window win (the original A1111 extension's output)."),
                io.Boolean.Input("freenoise", default=False, optional=True,
                                 tooltip="FreeNoise: later windows start from shuffled copies of the first "
                                         "window's noise, so windows agree on content."),
                io.Int.Input("max_batched_windows", default=1, min=0, max=64, optional=True,
                             tooltip="Windows run together in one model call. 1 (default): one window per call, "
                                     "the same bits as the leading AnimateDiff pack. 0 (auto): as many as free "
                                     "memory allows without raising peak memory more than 3% over one window per "
                                     "call. A higher number trades memory for speed (never beyond free memory). "
                                     "Batched calls give the same video up to rounding: kernels round a batch "
                                     "of another size differently.", **advanced()),
                io.Boolean.Input("spread_over_gpus", default=False, optional=True,
                                 tooltip="With core's MultiGPU CFG Split on the model: run each step's windows on "
                                         "all its GPUs, more on the faster ones (measured while sampling), instead "
                                         "of splitting cond and uncond; also speeds up cfg 1 (Lightning, LCM). "
                                         "One GPU: no effect.", **advanced()),
            ],
            outputs=[ContextOptionsType.Output(display_name="CONTEXT_OPTIONS")],
        )

    @classmethod
    def execute(cls, context_length: int, context_stride: int, context_overlap: int, closed_loop: bool,
                schedule: str, fuse_method: str, freenoise: bool = False,
                max_batched_windows: int = 1, spread_over_gpus: bool = False) -> io.NodeOutput:
        return io.NodeOutput(ContextOptions(context_length=context_length, context_stride=context_stride,
                                            context_overlap=context_overlap, closed_loop=closed_loop,
                                            schedule=schedule, fuse_method=fuse_method, freenoise=freenoise,
                                            max_batched_windows=max_batched_windows,
                                            spread_over_gpus=spread_over_gpus))


class SetContextOptions(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=node_id("SetContextOptions"),
            **search_aliases("AnimateDiff context", "Use Evolved Sampling", "sliding window"),
            display_name=display_name("Set Context Options"),
            category=CATEGORY,
            description="Sample this model in context windows, with or without a motion module.",
            inputs=[
                io.Model.Input("model", tooltip="The model to sample in windows (it is cloned, not changed)."),
                ContextOptionsType.Input("context_options", tooltip="From a Context Options node."),
            ],
            outputs=[io.Model.Output(tooltip="The model that samples in context windows.")],
        )

    @classmethod
    def execute(cls, model, context_options: ContextOptions) -> io.NodeOutput:
        require_context_options(context_options)
        model = model.clone()
        attach_context_options(model, context_options)
        owns_sampling(model, cls)
        return io.NodeOutput(model)


NODES = [ContextOptionsNode, SetContextOptions]
