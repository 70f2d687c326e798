"""Beta schedules a motion module samples with, as `model_sampling` objects like the model's own.

AnimateDiff modules were trained on a linear β schedule (0.00085 → 0.012) rather than SD's scaled-linear one;
sampling with the wrong one gives the washed-out "grey" look, so `auto` picks what the module's format says.
"""

from __future__ import annotations

from ..host import models as host_models
from ..host import sampling as host_sampling
from .errors import MotionApplyError

SCHEDULES = ("auto", "animatediff", "sd", "lcm", "sdxl")
# name → (ComfyUI make_beta_schedule name, linear_start, linear_end). ComfyUI's "sqrt_linear" is a plain
# linspace of β (AnimateDiff's training schedule); its "linear" is linear in √β (SD's "scaled_linear").
_BETAS = {
    "animatediff": ("sqrt_linear", 0.00085, 0.012),
    "sdxl": ("linear", 0.00085, 0.020),
}


def resolve(name: str, format_default: str) -> str:
    """`auto` is the schedule the module's format was trained with; other names stand for themselves."""
    if name not in SCHEDULES:
        raise MotionApplyError(f"unknown beta_schedule {name!r}", f"choose one of {', '.join(SCHEDULES)}.",
                               input="beta_schedule")
    return format_default if name == "auto" else name


def model_sampling(model, schedule: str):
    """A model_sampling object like `model`'s own but with the given betas (see nodes_model_advanced.py)."""
    current = model.get_model_object("model_sampling")
    config = model.model.model_config
    if schedule == "lcm":
        return host_sampling.lcm_sampling(config)
    if not host_sampling.is_discrete(current):
        raise MotionApplyError(f"beta_schedule {schedule!r} needs a model with a discrete (DDPM) schedule",
                               "set beta_schedule to 'sd' to keep this model's own.", input="beta_schedule")
    name, start, end = _BETAS[schedule]
    return host_sampling.with_betas(current, config, name, start, end)


def apply(model_patcher, schedule: str) -> None:
    """Sample the (already cloned) model with `schedule`; "sd" keeps its own. Undone when the clone is unloaded."""
    if schedule != "sd":
        model_patcher.add_object_patch("model_sampling", model_sampling(model_patcher, schedule))
        host_models.undo_object_patches_on_detach(model_patcher)
