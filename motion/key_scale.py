"""attention_key_scale: the leading pack's "scale" knob, which multiplies the temporal attention's keys.

AnimateDiff-Evolved multiplies k = to_k(x) by its "scale" (formerly called "motion_scale" there) before the
attention; to_k has no bias, so that is the same as multiplying to_k's weight. Here it is a weight patch on a
clone of the motion module's ModelPatcher (its `strength_model`, which scales the weight after any motion LoRA
patched it): the shared module stays as it was, and every attention path (ComfyUI's, the CUDA fast path) sees
the scaled weights without a change. Keys scaled up sharpen which frames each frame attends to; scaled down,
attention spreads evenly over the frames.
"""

from __future__ import annotations

import math

import torch

from .errors import MotionApplyError

_KEY_SUFFIX = ".to_k.weight"


def key_scaled(motion_patcher, scale: float):
    """`motion_patcher` itself for scale 1, else a clone whose temporal attention keys are multiplied by `scale`."""
    if not math.isfinite(scale) or scale < 0:
        raise MotionApplyError(f"attention_key_scale must be a finite number ≥ 0 (got {scale})",
                               "1 leaves the attention as trained.", input="attention_key_scale")
    if scale == 1.0:
        return motion_patcher
    patcher = motion_patcher.clone()
    keys = [k for k in patcher.model.state_dict() if k.endswith(_KEY_SUFFIX)]
    unused = torch.zeros(())
    patcher.add_patches({k: (unused,) for k in keys}, strength_patch=0.0, strength_model=float(scale))
    return patcher
