"""FreeInit and Per-Frame Noise: model options that change how any sampler node samples a video."""

from __future__ import annotations

from comfy_api.latest import io

from ..sampling import freeinit, noise
from .common import (CATEGORY, advanced, display_name, node_id, owns_sampling, require_finite, search_aliases,
                     validate_floats)


class FreeInit(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=node_id("FreeInit"),
            **search_aliases("FreeInit Iteration Options", "AnimateDiff FreeInit"),
            display_name=display_name("FreeInit"),
            category=CATEGORY,
            description="FreeInit (Wu et al. 2023): samples the video several times, each time starting from the "
                        "low spatio-temporal frequencies of the previous result re-noised and fresh noise in the "
                        "high ones, for more consistent videos. Works with KSampler, KSamplerAdvanced, "
                        "SamplerCustomAdvanced and context windows. Costs one full sampling per iteration.",
            inputs=[
                io.Model.Input("model", tooltip="The model to sample with (after Apply Motion Module); it is "
                                                "cloned, not changed."),
                io.Int.Input("iterations", default=3, min=1, max=10,
                             tooltip="Sampling passes. 1 is plain sampling; the paper recommends 3-5."),
                io.Combo.Input("filter", options=list(freeinit.FILTERS), default="butterworth",
                               tooltip="Low-pass filter in the 3-D FFT over frames × height × width. butterworth "
                                       "(the paper's default), gaussian (for models with more flicker), ideal "
                                       "(a hard cut)."),
                io.Float.Input("d_s", default=0.25, min=0.0, max=1.0, step=0.01,
                               tooltip="Spatial cut-off frequency, normalised to 0..1 (Nyquist). Paper: 0.25.",
                               **advanced()),
                io.Float.Input("d_t", default=0.25, min=0.0, max=1.0, step=0.01,
                               tooltip="Temporal cut-off frequency, normalised to 0..1 (Nyquist). Paper: 0.25.",
                               **advanced()),
                io.Int.Input("order", default=4, min=1, max=16,
                             tooltip="Butterworth order n: higher is sharper (towards ideal), lower softer "
                                     "(towards gaussian). Paper: 4. Ignored by the other filters.", **advanced()),
                io.Boolean.Input("coarse_to_fine", default=False,
                                 tooltip="Fewer steps in early iterations (iteration k of N runs k/N of the steps, "
                                         "the last runs all): faster, sometimes a little worse."),
            ],
            outputs=[io.Model.Output(tooltip="The model that samples with FreeInit; connect it to the sampler.")],
        )

    @classmethod
    def validate_inputs(cls, d_s=None, d_t=None) -> bool | str:
        return validate_floats(cls, d_s=d_s, d_t=d_t)

    @classmethod
    def execute(cls, model, iterations: int, filter: str, d_s: float, d_t: float, order: int,
                coarse_to_fine: bool) -> io.NodeOutput:
        require_finite(cls, d_s=d_s, d_t=d_t)
        options = freeinit.FreeInitOptions(iterations=iterations, filter=filter, d_s=d_s, d_t=d_t, order=order,
                                           coarse_to_fine=coarse_to_fine)
        model = model.clone()
        freeinit.attach(model, options)
        owns_sampling(model, cls)
        return io.NodeOutput(model)


class PerFrameNoise(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=node_id("PerFrameNoise"),
            **search_aliases("Sample Settings", "AnimateDiff noise", "Noise Layer"),
            display_name=display_name("Per-Frame Noise"),
            category=CATEGORY,
            description="Gives each frame noise of its own, from (seed, frame number) only, so making a video "
                        "longer keeps its first frames' noise (16 → 32 frames keeps the first 16). Covers the "
                        "starting noise and the fresh noise ancestral, SDE and LCM samplers draw every step, "
                        "with any sampler node.",
            inputs=[
                io.Model.Input("model", tooltip="The model to sample with; it is cloned, not changed."),
                io.Combo.Input("mode", options=list(noise.MODES), default="per_frame",
                               tooltip="per_frame: frame i's noise depends only on the seed and i. comfyui: "
                                       "ComfyUI's own noise over the whole batch (what you get without this "
                                       "node)."),
            ],
            outputs=[io.Model.Output(tooltip="The model that samples with this noise; connect it to the sampler.")],
        )

    @classmethod
    def execute(cls, model, mode: str) -> io.NodeOutput:
        model = model.clone()
        noise.attach(model, mode)
        owns_sampling(model, cls)
        return io.NodeOutput(model)


NODES = [FreeInit, PerFrameNoise]
