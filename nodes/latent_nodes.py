"""Latent Init Blend: img2vid's starting latent, the original extension's per-frame blend of image and noise."""

from __future__ import annotations

from comfy_api.latest import io

from ..sampling import init_latents
from .common import CATEGORY, display_name, node_id, require_finite, search_aliases, validate_floats

SD15_LATENT_SCALE = 0.18215
"""SD1.5's latent scale factor, used when no model is connected (AnimateDiff's main target)."""


class LatentInitBlend(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=node_id("LatentInitBlend"),
            **search_aliases("img2vid", "init image", "AnimateDiff init"),
            display_name=display_name("Latent Init Blend"),
            category=CATEGORY,
            description=(
                "img2vid: repeats an init latent over the frames and blends each frame with seeded noise, "
                "frame i keeping 1 - i^latent_power / latent_scale of the image (clamped to 0..1). Sample the "
                "result with KSampler at denoise < 1. With a last latent the blend also runs from the end, and, as in "
                "the original extension, the first frame is exactly the first latent and the last frame exactly "
                "the last latent."
            ),
            inputs=[
                io.Latent.Input(
                    "init_latent",
                    tooltip="The image's latent (VAE Encode): one latent shared by all frames, or one per frame.",
                ),
                io.Int.Input(
                    "frames", default=16, min=0, max=10000,
                    tooltip="Frames to make; 0 uses the batch size of init_latent (e.g. an encoded video).",
                ),
                io.Float.Input(
                    "latent_power", default=1.0, min=0.0, max=10.0, step=0.01,
                    tooltip="Curve of the blend: higher keeps early frames close to the image longer.",
                ),
                io.Float.Input(
                    "latent_scale", default=32.0, min=0.0, max=10000.0, step=0.1,
                    tooltip="Frames until the image fades fully into noise (for power 1); larger keeps more image.",
                ),
                io.Int.Input(
                    "seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True,
                    tooltip="Seed of the blended noise; the same seed gives the same latent.",
                ),
                io.Latent.Input(
                    "last_latent", optional=True,
                    tooltip="Optional last frame's latent: the last frame is exactly this latent and the frames "
                    "before it are blended towards it.",
                ),
                io.Float.Input(
                    "latent_power_last", default=1.0, min=0.0, max=10.0, step=0.01, optional=True,
                    tooltip="latent_power for the blend from the last frame backwards.",
                ),
                io.Float.Input(
                    "latent_scale_last", default=32.0, min=0.0, max=10000.0, step=0.1, optional=True,
                    tooltip="latent_scale for the blend from the last frame backwards.",
                ),
                io.Model.Input(
                    "model", optional=True,
                    tooltip="Optional: the model you sample with, so the noise matches its latent scale "
                    "(SD1.5's is used when not connected).",
                ),
            ],
            outputs=[io.Latent.Output(tooltip="The frames' latents, ready for KSampler with denoise < 1.")],
        )

    @classmethod
    def validate_inputs(cls, latent_power=None, latent_scale=None, latent_power_last=None,
                        latent_scale_last=None) -> bool | str:
        return validate_floats(cls, latent_power=latent_power, latent_scale=latent_scale,
                               latent_power_last=latent_power_last, latent_scale_last=latent_scale_last)

    @classmethod
    def execute(
        cls, init_latent: dict, frames: int, latent_power: float, latent_scale: float, seed: int,
        last_latent: dict | None = None, latent_power_last: float = 1.0, latent_scale_last: float = 32.0,
        model=None,
    ) -> io.NodeOutput:
        require_finite(cls, latent_power=latent_power, latent_scale=latent_scale,
                       latent_power_last=latent_power_last, latent_scale_last=latent_scale_last)
        if latent_scale == 0 or (last_latent is not None and latent_scale_last == 0):
            name = "latent_scale" if latent_scale == 0 else "latent_scale_last"
            raise ValueError(f"Latent Init Blend: {name} is 0, which divides by zero; set it above 0 (default 32)")
        scale = model.get_model_object("latent_format").scale_factor if model is not None else SD15_LATENT_SCALE
        samples = init_latents.blend_init_latents(
            init_latent["samples"], frames, latent_power, latent_scale, seed,
            last_latent=None if last_latent is None else last_latent["samples"],
            latent_power_last=latent_power_last, latent_scale_last=latent_scale_last,
            noise_std=1.0 / scale,
        )
        return io.NodeOutput({"samples": samples})


NODES = [LatentInitBlend]
