"""UNet surgery: where each motion module goes in the UNet, and putting it there while the clone is loaded.

Everything goes through ModelPatcher machinery so the shared base model is only touched while the clone
is loaded: the motion module is an additional model (loaded, offloaded and memory-counted with the UNet),
a PatcherInjection puts its layers into the UNet's TimestepEmbedSequential blocks on inject and takes them
out on eject, and the forward_timestep_embed patch hands each layer the `transformer_options` it needs to
split the batch into videos. Composing this with beta schedules, v1 GroupNorm and context windows is apply.py's.
"""

from __future__ import annotations

import functools
import weakref
from dataclasses import dataclass
from typing import Callable

import torch

from ..host import wrappers
from ..host import transformer_options as keys
from ..host.models import Downsample, ResBlock, SpatialTransformer, Upsample
from . import compile_worker, fast_path
from .errors import MotionApplyError
from .model import MotionModel, VanillaTemporalModule
from .scale_schedule import LayerScales

KEY = "animateflow_motion"


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
    window = transformer_options.get(keys.FRAMES_PER_VIDEO)
    if window and batch % window == 0:
        return window
    videos = len(transformer_options.get(keys.COND_OR_UNCOND) or [0])
    if batch % videos:
        raise MotionApplyError(f"a batch of {batch} latents cannot be split into {videos} videos of equal length",
                               "use one latent batch (one frame per latent) per sampler.", input="model")
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
            f"the motion module {module_name} does not fit the model {model_name}: their UNet levels or channels "
            "differ", "use an SD1.5 motion module with an SD1.5 checkpoint and an SDXL one with SDXL.",
            input="motion_module")
    return result


def _container(unet, point: InsertionPoint):
    return unet.middle_block if point.block is None else getattr(unet, point.blocks)[point.block]


class DeviceModules:
    """Which motion module object each patcher of one patched model injects, by the module's name in the motion model.

    Core's multigpu clone (ModelPatcher.deepclone_multigpu) gives each device's UNet clone its own deep clone of the
    motion module as an additional model, so the injection must look the layers up in the patcher it injects into,
    never in the model it was made for: that would put device 0's layers into every device's UNet. Per-layer
    settings (which UNet block a layer sits in, for motion scales) stay keyed by the original layers; `original`
    maps a clone's layer back to it.
    """

    def __init__(self, motion: torch.nn.Module, points: list[InsertionPoint]):
        names = {id(module): name for name, module in motion.named_modules()}
        self.points = [(point, names[id(point.module)]) for point in points]
        self._originals: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        # What each patcher injected, so eject takes out exactly those layers.
        self.injected: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def resolved(self, patcher) -> list[tuple[InsertionPoint, VanillaTemporalModule]]:
        """Each insertion point with the layer of `patcher`'s own motion module that goes there."""
        motion = patcher.get_additional_models_with_key(KEY)[0].model
        result = []
        for point, name in self.points:
            layer = motion.get_submodule(name)
            if layer is not point.module:
                self._originals[layer] = point.module
            result.append((point, layer))
        return result

    def original(self, layer: VanillaTemporalModule) -> VanillaTemporalModule:
        return self._originals.get(layer, layer)


def _motion_layer_handler(scales: Callable, watch, fast: fast_path.FastPath, modules: DeviceModules,
                          layer: VanillaTemporalModule, x, emb, context, transformer_options, *args):
    frames = frames_per_video(x.shape[0], transformer_options)
    if watch is not None:
        watch.saw(frames)
    if frames > layer.pe_length:
        raise MotionApplyError(
            f"{frames} frames exceed the motion module's positional encoding of {layer.pe_length} frames",
            f"connect context options with context_length ≤ {layer.pe_length} to the context_options input to sample "
            "longer videos in windows.", input="context_options")
    scale = scales(modules.original(layer), x, frames, transformer_options)
    if fast.use(x, frames):
        return fast.forward(layer, x, frames, scale)
    return layer(x, frames, scale)


_BLOCK_NAMES = {"input_blocks": "down", "middle_block": "mid", "output_blocks": "up"}


def block_names(points: list[InsertionPoint]) -> dict[int, str]:
    """id(module) → "down", "mid" or "up": where each motion module sits, for per-block motion scales."""
    return {id(point.module): _BLOCK_NAMES[point.blocks] for point in points}


def _injection(modules: DeviceModules):
    def inject(patcher):
        unet = patcher.model.diffusion_model
        layers = modules.injected[patcher] = modules.resolved(patcher)
        for point, module in layers:
            container = _container(unet, point)
            container.insert(_insert_index(container, point.anchor), module)

    def eject(patcher):
        unet = patcher.model.diffusion_model
        for point, module in modules.injected.pop(patcher, None) or modules.resolved(patcher):
            container = _container(unet, point)
            for j, layer in enumerate(container):
                if layer is module:
                    del container[j]
                    break

    return wrappers.injection(inject, eject)


def is_applied(model_patcher) -> bool:
    return bool(model_patcher.get_additional_models_with_key(KEY))


def inject(model_patcher, motion_patcher, points: list[InsertionPoint], motion_scale: float | Callable,
           fast: fast_path.FastPath | None = None, watch=None) -> None:
    """Put the motion module's layers at `points` of the (already cloned) model while it is loaded.

    `motion_scale` is a float or a callable (layer, x, frames, transformer_options) → float or tensor (see
    scale_schedule.LayerScales); `fast` is this patched model's own fast path (shared by its clones; "auto" when
    not given); `watch`, when given, hears the frame count of every motion module call.
    """
    scales = motion_scale if callable(motion_scale) else LayerScales(float(motion_scale), None, {})
    fast = fast if fast is not None else fast_path.FastPath("auto")
    modules = DeviceModules(motion_patcher.model, points)
    model_patcher.set_additional_models(KEY, [motion_patcher])
    model_patcher.set_injections(KEY, [_injection(modules)])
    model_patcher.set_model_forward_timestep_embed_patch(
        (VanillaTemporalModule, functools.partial(_motion_layer_handler, scales, watch, fast, modules)))
    wrappers.add(model_patcher, wrappers.OUTER_SAMPLE, KEY, compile_worker.while_sampling)


def fast_path_of(model_patcher) -> fast_path.FastPath | None:
    """The fast path a patched model's motion layers use (for the benchmark and tests), or None if none applied."""
    patches = model_patcher.model_options.get(keys.TRANSFORMER_OPTIONS, {}).get(keys.PATCHES, {})
    for owner, handler in patches.get(keys.FORWARD_TIMESTEP_EMBED_PATCH, []):
        if owner is VanillaTemporalModule and isinstance(handler, functools.partial):
            return next((a for a in handler.args if isinstance(a, fast_path.FastPath)), None)
    return None
