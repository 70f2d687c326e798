"""Apply Motion Module: one clone of the model composed from motion/'s and sampling/'s parts.

Surgery (motion/inject.py), v1's GroupNorm over frames (motion/v1_groupnorm.py), the beta schedule
(motion/beta_schedules.py), context windows and the live preview (sampling/) each patch the same clone through
ModelPatcher machinery, so the input model is never changed and every patch is undone when the clone is unloaded.
Checks run before the clone exists, so a refused input leaves nothing behind. Here, above both layers, because it
composes them.
"""

from __future__ import annotations

import math

from ..motion import beta_schedules, fast_path, inject, key_scale, v1_groupnorm
from ..motion.errors import MotionApplyError
from ..motion.loader import MotionModule
from ..motion.scale_schedule import LayerScales, MotionScaleSchedule
from ..sampling import live_preview as live
from ..sampling.context_handler import attach_context_options
from ..sampling.context_options import require_context_options
from . import motion_watch


def apply_motion_module(model, motion: MotionModule, motion_scale: float = 1.0, beta_schedule: str = "auto",
                        context_options=None, fast_mode: str = "auto", scale_schedule: MotionScaleSchedule | None = None,
                        attention_key_scale: float = 1.0, node_id: str | None = None, live_preview: bool = True):
    """A clone of `model` that samples videos with `motion`; `model` itself is left as it was.

    fast_mode "auto" runs the motion modules through `fast_path` where it can (CUDA, fp16/bf16), "off" never; the
    clone gets its own `FastPath`, so what one model compiles or fails at never changes another's.
    `scale_schedule` (Motion Scale Schedule) multiplies motion_scale per frame, block and region;
    `attention_key_scale` multiplies the temporal attention's keys (the leading pack's "scale").
    `node_id` is the Apply Motion Module node's, where warnings about motion that did not happen are shown.
    `live_preview` sends all frames of each step to the editor as an animation while sampling.
    """
    fmt = motion.format
    if not math.isfinite(motion_scale) or motion_scale < 0:
        raise MotionApplyError(f"motion_scale is {motion_scale}", "enter a finite number ≥ 0.", input="motion_scale")
    if scale_schedule is not None and not isinstance(scale_schedule, MotionScaleSchedule):
        raise MotionApplyError(f"motion_scale_schedule got {type(scale_schedule).__name__}, not this pack's motion "
                               "scale schedule", "replace the connected node with AnimateFlow's.",
                               input="motion_scale_schedule")
    schedule = beta_schedules.resolve(beta_schedule, fmt.default_betas)
    if fast_mode not in fast_path.MODES:
        raise MotionApplyError(f"unknown fast_path {fast_mode!r}", f"choose one of {fast_path.MODES}.",
                               input="fast_path")
    if inject.is_applied(model):
        raise MotionApplyError("this model already has a motion module applied", "apply one per model.",
                               input="model")
    pe_length = fmt.layout.pe_length
    if context_options is not None and require_context_options(context_options).context_length > pe_length:
        raise MotionApplyError(
            f"context_length {context_options.context_length} is longer than the motion module's positional "
            f"encoding ({pe_length} frames, {fmt.name})", f"set the context options' context_length to {pe_length} "
            "or less.", input="context_options")
    points = inject.insertion_points(model.model.diffusion_model, motion.model, type(model.model.model_config).__name__,
                                     f"{motion.name} ({fmt.name}, {fmt.family})")
    motion_patcher = key_scale.key_scaled(motion.patcher, attention_key_scale)

    patched = model.clone()
    scales = LayerScales(motion_scale, scale_schedule, inject.block_names(points))
    watch = motion_watch.MotionWatch(node_id)
    inject.inject(patched, motion_patcher, points, scales, fast_path.FastPath(fast_mode), watch)
    motion_watch.attach(patched, watch)
    if scales.never_moves():
        motion_watch.warn(node_id, motion_watch.scale_zero_text())
    if fmt.groupnorm_over_frames:
        v1_groupnorm.attach(patched)
    beta_schedules.apply(patched, schedule)
    if context_options is not None:
        attach_context_options(patched, context_options)
    live.attach(patched, live_preview)
    return patched
