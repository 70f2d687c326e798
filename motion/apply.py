"""Apply Motion Module: one clone of the model composed from the motion package's parts.

Surgery (inject.py), v1's GroupNorm over frames (v1_groupnorm.py), the beta schedule (beta_schedules.py) and
context windows (sampling/) each patch the same clone through ModelPatcher machinery, so the input model is
never changed and every patch is undone when the clone is unloaded. Checks run before the clone exists, so a
refused input leaves nothing behind.
"""

from __future__ import annotations

from ..sampling.context_options import require_context_options
from . import beta_schedules, fast_path, inject, v1_groupnorm
from .errors import MotionApplyError
from .loader import MotionModule

NODE = inject.NODE


def apply_motion_module(model, motion: MotionModule, motion_scale: float = 1.0, beta_schedule: str = "auto",
                        context_options=None, fast_mode: str = "auto"):
    """A clone of `model` that samples videos with `motion`; `model` itself is left as it was.

    fast_mode "auto" runs the motion modules through `fast_path` where it can (CUDA, fp16/bf16), "off" never; the
    clone gets its own `FastPath`, so what one model compiles or fails at never changes another's.
    """
    fmt = motion.format
    schedule = beta_schedules.resolve(beta_schedule, fmt.default_betas)
    if fast_mode not in fast_path.MODES:
        raise MotionApplyError(f"{NODE}: unknown fast_path {fast_mode!r}; choose one of {fast_path.MODES}.")
    if inject.is_applied(model):
        raise MotionApplyError(f"{NODE}: this model already has a motion module applied; apply one per model.")
    pe_length = fmt.layout.pe_length
    if context_options is not None and require_context_options(context_options, NODE).context_length > pe_length:
        raise MotionApplyError(
            f"{NODE}: context_length {context_options.context_length} is longer than the motion module's positional "
            f"encoding ({pe_length} frames, {fmt.name}); set Context Options' context_length to {pe_length} or less.")
    points = inject.insertion_points(model.model.diffusion_model, motion.model, type(model.model.model_config).__name__,
                                     f"{motion.name} ({fmt.name}, {fmt.family})")

    patched = model.clone()
    inject.inject(patched, motion.patcher, points, motion_scale, fast_path.FastPath(fast_mode))
    if fmt.groupnorm_over_frames:
        v1_groupnorm.attach(patched)
    beta_schedules.apply(patched, schedule)
    if context_options is not None:
        from ..sampling.context_handler import attach_context_options

        attach_context_options(patched, context_options)
    return patched
