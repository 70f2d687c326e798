"""The motion module's `cached_patcher_init`: how core's multigpu cloning makes a fresh motion module per device.

ComfyUI 0.33.0's `ModelPatcher.deepclone_multigpu` (MultiGPU CFG Split, Select Model Device) deep-clones a model and
every additional model it carries, and each clone is made by calling the patcher's `cached_patcher_init` factory;
without one it raises. Core's loaders register a factory that reads the checkpoint again. The motion module may come
from a state dict with no file behind it (other nodes build it), so the factory copies the module instead:
deepclone_multigpu unloads the source (and its clones) before it calls the factory, so the copy is of the weights as
loaded, without the weight patches (motion LoRA, attention_key_scale) that the clone re-applies itself.
"""

from __future__ import annotations

import copy

import torch

from ..host import models


def fresh_patcher(model: torch.nn.Module, load_device: torch.device, offload_device: torch.device,
                  disable_dynamic: bool = False):
    """A new ModelPatcher over a copy of `model` (core passes `disable_dynamic` to some factories; ours is never
    a dynamic patcher, so it changes nothing)."""
    return models.patcher_for(copy.deepcopy(model), load_device, offload_device)


def register(patcher) -> None:
    """Let core's multigpu clone copy this motion module (hosts without multigpu ignore the attribute)."""
    patcher.cached_patcher_init = (fresh_patcher, (patcher.model, patcher.load_device, patcher.offload_device))
