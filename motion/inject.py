"""Apply to Model: a clone of the UNet's ModelPatcher that carries the motion module.

Everything goes through ModelPatcher machinery so the shared base model is only touched while the clone
is loaded: the motion module is an additional model (loaded, offloaded and memory-counted with the UNet),
a PatcherInjection puts its layers into the UNet's TimestepEmbedSequential blocks on inject and takes them
out on eject, and the forward_timestep_embed patch hands each layer the `transformer_options` it needs to
split the batch into videos. The beta schedule is an object patch, undone when the clone is unloaded.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import comfy.model_sampling
import comfy.patcher_extension
import torch
from comfy.ldm.modules.attention import SpatialTransformer
from comfy.ldm.modules.diffusionmodules.openaimodel import Downsample, ResBlock, Upsample

from ..sampling.context_options import require_context_options
from ..sampling.published_keys import FRAMES_PER_VIDEO
from . import fast_path
from .loader import MotionModule
from .model import MotionModel, VanillaTemporalModule

NODE = "Apply Motion Module"
KEY = "animateflow_motion"
BETA_SCHEDULES = ("auto", "animatediff", "sd", "lcm", "sdxl")
# name → (ComfyUI make_beta_schedule name, linear_start, linear_end). ComfyUI's "sqrt_linear" is a plain
# linspace of β (AnimateDiff's training schedule); its "linear" is linear in √β (SD's "scaled_linear").
_BETAS = {
    "animatediff": ("sqrt_linear", 0.00085, 0.012),
    "sdxl": ("linear", 0.00085, 0.020),
}


class MotionApplyError(ValueError):
    """A motion module that cannot be applied as asked; the message names the input and the fix."""


@dataclass(frozen=True)
class InsertionPoint:
    """Where one motion module goes: the UNet block list, which block, and the index to insert at."""

    blocks: str  # "input_blocks", "middle_block" or "output_blocks"
    block: int | None  # index into input_blocks/output_blocks; None for middle_block
    anchor: str  # "end", "before_upsample" or "after_transformer": resolved on the live block at inject time
    module: VanillaTemporalModule


def _insert_index(container, anchor: str) -> int:
    """Where to insert in the block as it is now, not as it was at Apply: another clone's layers may have been in
    it then (a model left loaded and injected by an earlier run), and are gone by the time this one injects."""
    if anchor == "before_upsample":
        return next(j for j, m in enumerate(container) if isinstance(m, Upsample))
    if anchor == "after_transformer":
        return max((j for j, m in enumerate(container) if isinstance(m, SpatialTransformer)), default=0) + 1
    return len(container)


def frames_per_video(batch: int, transformer_options: dict) -> int:
    """Each entry of `cond_or_uncond` is one video of the batch, so attention never crosses cond/uncond or videos;
    a call of several context windows says its window length, so attention never crosses windows either."""
    window = transformer_options.get(FRAMES_PER_VIDEO)
    if window and batch % window == 0:
        return window
    videos = len(transformer_options.get("cond_or_uncond") or [0])
    if batch % videos:
        raise MotionApplyError(f"{NODE}: a batch of {batch} latents cannot be split into {videos} videos of equal "
                               "length; use one latent batch (one frame per latent) per sampler.")
    return batch // videos


def _res_channels(block) -> int | None:
    for layer in block:
        if isinstance(layer, ResBlock):
            return layer.out_channels
    return None


def insertion_points(unet: torch.nn.Module, motion: MotionModel, model_name: str, module_name: str) -> list[InsertionPoint]:
    """Map each motion module onto the UNet: after every resnet(+transformer) layer of the down and up blocks
    (before the upsampler where an output block ends with one), and after the mid block's transformer."""
    points = []
    level, layer = 0, 0
    for i, block in enumerate(unet.input_blocks):
        if any(isinstance(m, Downsample) for m in block):
            level, layer = level + 1, 0
        elif _res_channels(block) is not None:
            points.append(("input_blocks", i, "end", ("down", level, layer), _res_channels(block)))
            layer += 1
    if motion.mid_block is not None:
        points.append(("middle_block", None, "after_transformer", ("mid", 0, 0), _res_channels(unet.middle_block)))
    level, layer = 0, 0
    for i, block in enumerate(unet.output_blocks):
        upsample = isinstance(block[-1], Upsample)
        points.append(("output_blocks", i, "before_upsample" if upsample else "end", ("up", level, layer),
                       _res_channels(block)))
        level, layer = (level + 1, 0) if upsample else (level, layer + 1)

    groups = {"down": list(motion.down_blocks), "up": list(motion.up_blocks), "mid": [motion.mid_block]}
    wanted = [m for g in groups.values() for b in g if b is not None for m in b.motion_modules]
    result = []
    for blocks, block, anchor, (group, level, layer), channels in points:
        owner = groups[group][level] if level < len(groups[group]) else None
        module = owner.motion_modules[layer] if owner is not None and layer < len(owner.motion_modules) else None
        if module is not None and module.channels == channels:
            result.append(InsertionPoint(blocks, block, anchor, module))
    if len(result) != len(points) or len(result) != len(wanted):
        raise MotionApplyError(
            f"{NODE}: the motion module {module_name} does not fit the model {model_name}: their UNet levels or "
            "channels differ. Use an SD1.5 motion module with an SD1.5 checkpoint and an SDXL one with SDXL.")
    return result


def _container(unet, point: InsertionPoint):
    return unet.middle_block if point.block is None else getattr(unet, point.blocks)[point.block]


class _VideoState:
    """Frames per video of the UNet call in progress, for the v1 GroupNorms (they see no transformer_options)."""

    frames: int | None = None


def _groupnorm_over_frames(norm: torch.nn.Module, state: _VideoState, x: torch.Tensor) -> torch.Tensor:
    """GroupNorm with statistics over (C, frames, H, W) of each video, as v1's UNet was trained."""
    forward = type(norm).forward.__get__(norm)
    frames = state.frames
    if not frames or x.shape[0] % frames:
        return forward(x)
    bf, c, h, w = x.shape
    video = x.reshape(bf // frames, frames, c, h, w).transpose(1, 2)  # b c f h w
    return forward(video).transpose(1, 2).reshape(bf, c, h, w)


def _unet_groupnorms(unet) -> list[torch.nn.Module]:
    norms = [m.in_layers[0] for m in unet.modules() if isinstance(m, ResBlock)]
    norms += [m.out_layers[0] for m in unet.modules() if isinstance(m, ResBlock)]
    return norms + [unet.out[0]]


def _diffusion_model_wrapper(state: _VideoState, executor, *args, **kwargs):
    x, transformer_options = args[0], args[5]
    state.frames = frames_per_video(x.shape[0], transformer_options)
    try:
        return executor(*args, **kwargs)
    finally:
        state.frames = None


def _motion_layer_handler(scale: float, fast_mode: str, layer: VanillaTemporalModule, x, emb, context,
                          transformer_options, *args):
    frames = frames_per_video(x.shape[0], transformer_options)
    if frames > layer.pe_length:
        raise MotionApplyError(
            f"{NODE}: {frames} frames exceed the motion module's positional encoding of {layer.pe_length} frames. "
            f"Connect Context Options with context_length ≤ {layer.pe_length} to the context_options input to sample "
            "longer videos in windows.")
    if fast_path.use_fast_path(fast_mode, x, frames):
        return fast_path.forward(layer, x, frames, scale)
    return layer(x, frames, scale)


def _injection(points: list[InsertionPoint], over_frames: bool, state: _VideoState):
    def inject(patcher):
        unet = patcher.model.diffusion_model
        for point in points:
            container = _container(unet, point)
            container.insert(_insert_index(container, point.anchor), point.module)
        if over_frames:
            for norm in _unet_groupnorms(unet):
                norm.forward = functools.partial(_groupnorm_over_frames, norm, state)

    def eject(patcher):
        unet = patcher.model.diffusion_model
        for point in points:
            container = _container(unet, point)
            for j, layer in enumerate(container):
                if layer is point.module:
                    del container[j]
                    break
        if over_frames:
            for norm in _unet_groupnorms(unet):
                norm.__dict__.pop("forward", None)

    return comfy.patcher_extension.PatcherInjection(inject=inject, eject=eject)


def _model_sampling(model, schedule: str):
    """A model_sampling object like the model's own but with the given betas (see nodes_model_advanced.py)."""
    current = model.get_model_object("model_sampling")
    config = model.model.model_config
    if schedule == "lcm":
        import comfy_extras.nodes_model_advanced as advanced

        class ModelSamplingLCM(advanced.ModelSamplingDiscreteDistilled, advanced.LCM):
            pass

        return ModelSamplingLCM(config)
    if not isinstance(current, comfy.model_sampling.ModelSamplingDiscrete):
        raise MotionApplyError(f"{NODE}: beta_schedule {schedule!r} needs a model with a discrete (DDPM) schedule; "
                               "set beta_schedule to 'sd' to keep this model's own.")
    name, start, end = _BETAS[schedule]
    sampling = type(current)(config)
    sampling._register_schedule(beta_schedule=name, linear_start=start, linear_end=end)
    return sampling


def apply_motion_module(model, motion: MotionModule, motion_scale: float = 1.0, beta_schedule: str = "auto",
                        context_options=None, fast_mode: str = "auto"):
    """A clone of `model` that samples videos with `motion`; `model` itself is left as it was.

    fast_mode "auto" runs the motion modules through `fast_path` where it can (CUDA, fp16/bf16), "off" never.
    """
    if beta_schedule not in BETA_SCHEDULES:
        raise MotionApplyError(f"{NODE}: unknown beta_schedule {beta_schedule!r}; choose one of {BETA_SCHEDULES}.")
    if fast_mode not in fast_path.MODES:
        raise MotionApplyError(f"{NODE}: unknown fast_path {fast_mode!r}; choose one of {fast_path.MODES}.")
    if model.get_additional_models_with_key(KEY):
        raise MotionApplyError(f"{NODE}: this model already has a motion module applied; apply one per model.")
    fmt = motion.format
    pe_length = fmt.layout.pe_length
    if context_options is not None and require_context_options(context_options, NODE).context_length > pe_length:
        raise MotionApplyError(
            f"{NODE}: context_length {context_options.context_length} is longer than the motion module's positional "
            f"encoding ({pe_length} frames, {fmt.name}); set Context Options' context_length to {pe_length} or less.")
    model_name = type(model.model.model_config).__name__
    points = insertion_points(model.model.diffusion_model, motion.model, model_name,
                              f"{motion.name} ({fmt.name}, {fmt.family})")

    m = model.clone()
    state = _VideoState()
    m.set_additional_models(KEY, [motion.patcher])
    m.set_injections(KEY, [_injection(points, fmt.groupnorm_over_frames, state)])
    m.set_model_forward_timestep_embed_patch((VanillaTemporalModule,
                                              functools.partial(_motion_layer_handler, float(motion_scale), fast_mode)))
    if fmt.groupnorm_over_frames:
        m.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, KEY,
                               functools.partial(_diffusion_model_wrapper, state))
    schedule = fmt.default_betas if beta_schedule == "auto" else beta_schedule
    if schedule != "sd":
        m.add_object_patch("model_sampling", _model_sampling(m, schedule))
    if context_options is not None:
        from ..sampling.context_handler import attach_context_options

        attach_context_options(m, context_options)
    return m
