"""Sampling internals: sampler objects, `model_sampling` schedules, the context-window contract, free memory.

The beta schedule a motion module was trained with is built by the host's own `ModelSamplingDiscrete` from a named
schedule (its private `_register_schedule`, the one way to give it other betas); AnimateLCM's sampling is the
host's LCM class over its distilled discrete schedule (what its ModelSamplingDiscrete node builds).
"""

from __future__ import annotations

import inspect
from typing import Any

import comfy.context_windows
import comfy.model_management
import comfy.model_sampling
import comfy.samplers
import torch

from .needs import Need

NEEDS = (
    Need("comfy.context_windows:ContextHandlerABC", "context windows (Context Options)"),
    Need("comfy.context_windows:ContextHandlerABC.execute", "context windows (Context Options)",
         params=("calc_cond_batch", "model", "conds", "x_in", "timestep", "model_options")),
    Need("comfy.samplers:calc_cond_batch", "context windows (Context Options)",
         params=("model", "conds", "x_in", "timestep", "model_options")),
    Need("comfy.model_management:get_free_memory", "context windows' automatic batching", params=("dev",)),
    Need("comfy.model_sampling:ModelSamplingDiscrete._register_schedule", "beta schedules other than 'sd'",
         params=("beta_schedule", "linear_start", "linear_end")),
    Need("comfy_extras.nodes_model_advanced:ModelSamplingDiscreteDistilled", "the 'lcm' beta schedule (AnimateLCM)"),
    Need("comfy_extras.nodes_model_advanced:LCM", "the 'lcm' beta schedule (AnimateLCM)"),
    Need("comfy.samplers:KSAMPLER", "per-frame noise of ancestral and SDE samplers",
         params=("sampler_function", "extra_options", "inpaint_options")),
)

ContextHandlerABC = comfy.context_windows.ContextHandlerABC
"""The host's contract for sliding context windows: its calc_cond_batch hands every evaluation to
`model_options[CONTEXT_HANDLER]` when that says `should_use_context`."""
CONTEXT_HANDLER = "context_handler"
# model_options keys of core's multigpu sampling (MultiGPU CFG Split, ComfyUI 0.23+): device -> that device's clone,
# the worker pool of the extra devices, and per-device options (relative_speed).
MULTIGPU_CLONES = "multigpu_clones"
MULTIGPU_THREAD_POOL = "multigpu_thread_pool"
MULTIGPU_OPTIONS = "multigpu_options"


def free_memory(device: torch.device) -> int:
    """Bytes the host considers free for a model call on `device`."""
    return comfy.model_management.get_free_memory(device)


def sampler_accepts(sampler: Any, option: str) -> bool:
    """Whether `sampler` is a host KSAMPLER whose function takes `option` and the user has not set it."""
    function = getattr(sampler, "sampler_function", None)
    if not isinstance(sampler, comfy.samplers.KSAMPLER) or function is None:
        return False
    return option in inspect.signature(function).parameters and option not in sampler.extra_options


def sampler_with_option(sampler: Any, option: str, value: Any) -> Any:
    """A copy of a KSAMPLER (see `sampler_accepts`) with one more option passed to its function."""
    return comfy.samplers.KSAMPLER(sampler.sampler_function, {**sampler.extra_options, option: value},
                                   sampler.inpaint_options)


def is_discrete(model_sampling: Any) -> bool:
    """Whether a `model_sampling` object is a discrete (DDPM) schedule, which has betas to replace."""
    return isinstance(model_sampling, comfy.model_sampling.ModelSamplingDiscrete)


def with_betas(model_sampling: Any, model_config: Any, schedule: str, linear_start: float, linear_end: float):
    """A new `model_sampling` of the same class with the host's named beta schedule ("linear" is linear in √β,
    "sqrt_linear" a plain linspace of β) from `linear_start` to `linear_end`."""
    sampling = type(model_sampling)(model_config)
    sampling._register_schedule(beta_schedule=schedule, linear_start=linear_start, linear_end=linear_end)
    return sampling


def lcm_sampling(model_config: Any):
    """The `model_sampling` of an LCM-distilled model (AnimateLCM), as the host's ModelSamplingDiscrete node
    builds it for "lcm"."""
    import comfy_extras.nodes_model_advanced as advanced

    class ModelSamplingLCM(advanced.ModelSamplingDiscreteDistilled, advanced.LCM):
        pass

    return ModelSamplingLCM(model_config)
