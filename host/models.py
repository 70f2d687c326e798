"""Model patching and the UNet's parts: patchers for our own models, LoRA weight patches, the SD UNet's block
classes, the host's layer ops and attention.

Our motion module is a ModelPatcher like the host's models, so ComfyUI loads, offloads and counts it with the UNet;
its layers are the host's `manual_cast` ops (weights cast to the input's dtype at run time) and its attention is the
host's optimized attention (whichever kernel the user chose).
"""

from __future__ import annotations

import comfy.ldm.modules.attention
import comfy.ldm.modules.diffusionmodules.openaimodel as openaimodel
import comfy.model_management
import comfy.model_patcher
import comfy.ops
import comfy.patcher_extension
import comfy.utils
import torch

from .needs import Need

_MOTION = "Apply Motion Module (motion modules are placed in the UNet's blocks)"
NEEDS = (
    Need("comfy.model_patcher:ModelPatcher", "Load Motion Module", params=("model", "load_device", "offload_device")),
    Need("comfy.model_patcher:ModelPatcher.set_injections", _MOTION),
    Need("comfy.model_patcher:ModelPatcher.set_additional_models", _MOTION),
    Need("comfy.model_patcher:ModelPatcher.set_model_forward_timestep_embed_patch", _MOTION),
    Need("comfy.model_patcher:ModelPatcher.add_wrapper_with_key", "every wrapper of ours (noise, windows, preview)"),
    Need("comfy.model_patcher:ModelPatcher.add_object_patch", "beta schedules other than 'sd'"),
    Need("comfy.model_patcher:ModelPatcher.add_callback_with_key", "beta schedules other than 'sd' (undone when "
         "the model is swapped out)", params=("call_type", "key", "callback")),
    Need("comfy.model_patcher:ModelPatcher.remove_callbacks_with_key", "beta schedules other than 'sd'"),
    Need("comfy.patcher_extension:CallbacksMP.ON_DETACH", "beta schedules other than 'sd' (undone when the model "
         "is swapped out)"),
    Need("comfy.model_patcher:ModelPatcher.add_patches", "Motion LoRA Loader", params=("patches", "strength_patch")),
    Need("comfy.weight_adapter.lora:LoRAAdapter", "Motion LoRA Loader", params=("loaded_keys", "weights")),
    Need("comfy.model_management:unet_dtype", "Load Motion Module", params=("supported_dtypes",)),
    Need("comfy.model_management:get_torch_device", "Load Motion Module"),
    Need("comfy.model_management:unet_offload_device", "Load Motion Module"),
    Need("comfy.ldm.modules.diffusionmodules.openaimodel:ResBlock", _MOTION),
    Need("comfy.ldm.modules.diffusionmodules.openaimodel:Downsample", _MOTION),
    Need("comfy.ldm.modules.diffusionmodules.openaimodel:Upsample", _MOTION),
    Need("comfy.ldm.modules.attention:SpatialTransformer", _MOTION),
    Need("comfy.ldm.modules.attention:optimized_attention", "the motion module's temporal attention"),
    Need("comfy.ops:manual_cast.Linear", "the motion module's layers"),
    Need("comfy.ops:manual_cast.GroupNorm", "the motion module's layers"),
    Need("comfy.ops:manual_cast.LayerNorm", "the motion module's layers"),
    Need("comfy.ops:cast_bias_weight", "the motion module's fast path", params=("s", "input")),
    Need("comfy.ops:run_every_op", "the motion module's fast path"),
)

OPS = comfy.ops.manual_cast
"""Layer classes whose weights are cast to the input's dtype and device at run time."""
ModelPatcher = comfy.model_patcher.ModelPatcher
ResBlock = openaimodel.ResBlock
Downsample = openaimodel.Downsample
Upsample = openaimodel.Upsample
SpatialTransformer = comfy.ldm.modules.attention.SpatialTransformer


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """The host's optimized attention over (batch, tokens, heads·dim), looked up per call so the user's choice of
    kernel (a launch flag) is the one used."""
    return comfy.ldm.modules.attention.optimized_attention(q, k, v, heads)


def cast_bias_weight(layer: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A manual_cast layer's weight and bias, cast as its own forward would for input `x`."""
    cast = comfy.ops.cast_bias_weight(layer, x)
    return cast[0], cast[1]


def run_every_op() -> None:
    """What the host runs before every op of its own layers (interrupt checks and the like)."""
    comfy.ops.run_every_op()


def storage_dtype() -> torch.dtype:
    """The dtype ComfyUI would store a UNet in on this device (weights are cast at run time)."""
    return comfy.model_management.unet_dtype(supported_dtypes=[torch.float16, torch.bfloat16, torch.float32])


def patcher_for(model: torch.nn.Module, load_device: torch.device | None = None,
                offload_device: torch.device | None = None):
    """A ModelPatcher for a model of ours, by default on the devices ComfyUI uses for UNets."""
    return comfy.model_patcher.ModelPatcher(model, load_device=load_device or comfy.model_management.get_torch_device(),
                                            offload_device=offload_device or comfy.model_management.unet_offload_device())


def lora_patches(pairs: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> dict:
    """Weight patches adding `up @ down` (scale 1) to each key, for ModelPatcher.add_patches."""
    from comfy.weight_adapter.lora import LoRAAdapter

    return {key: LoRAAdapter(set(), (up, down, None, None, None, None)) for key, (up, down) in pairs.items()}


_OBJECT_PATCH_KEY = "animateflow_object_patches"


def _restore_object_patches(patcher, unpatch_all: bool) -> None:
    if unpatch_all:  # the host's unpatch_model already put them back
        return
    for key, original in patcher.object_patches_backup.items():
        comfy.utils.set_attr(patcher.model, key, original)
    patcher.object_patches_backup.clear()


def undo_object_patches_on_detach(model_patcher) -> None:
    """Put the shared model's objects back whenever this clone is detached, also when the host detaches it without
    unpatching (`detach(unpatch_all=False)`).

    With dynamic VRAM (ComfyUI 0.12+ on NVIDIA) a clone that gives way to another clone of the same model is only
    detached, never unpatched, and ModelPatcher restores object patches in unpatch_model alone: our beta schedule
    (a `model_sampling` object patch) stayed on the shared model, and the next plain render sampled with
    AnimateDiff's betas. The clone re-applies its patches whenever it loads again.
    """
    on_detach = comfy.patcher_extension.CallbacksMP.ON_DETACH
    model_patcher.remove_callbacks_with_key(on_detach, _OBJECT_PATCH_KEY)
    model_patcher.add_callback_with_key(on_detach, _OBJECT_PATCH_KEY, _restore_object_patches)
