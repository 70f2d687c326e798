"""ModelPatcher wrappers: which host call each kind wraps, their order, and the wrapped call's arguments by name.

A wrapper is `wrapper(executor, *args, **kwargs)` around one host call (`executor(*args, **kwargs)` runs the rest).
The host passes some arguments by position and some by keyword, and another pack's wrapper outside ours may pass
them either way, so ours read and replace them by name through `WrappedCall`, from the signature of the host
function the executor ends in (`executor.original`): one way for every kind.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import comfy.patcher_extension

from .needs import Need

OUTER_SAMPLE = "OUTER_SAMPLE"  # CFGGuider.outer_sample: noise drawn, the whole run of one sampler node
PREPARE_SAMPLING = "PREPARE_SAMPLING"  # sampler_helpers.prepare_sampling: models loaded for the noise shape
SAMPLER_SAMPLE = "SAMPLER_SAMPLE"  # KSAMPLER.sample: one sampler pass over the sigmas
DIFFUSION_MODEL = "DIFFUSION_MODEL"  # the UNet's forward: one model call

NEEDS = (
    Need("comfy.patcher_extension:WrappersMP.OUTER_SAMPLE", "per-frame noise, context windows, FreeNoise and the "
         "live preview"),
    Need("comfy.patcher_extension:WrappersMP.PREPARE_SAMPLING", "context windows' memory estimate"),
    Need("comfy.patcher_extension:WrappersMP.SAMPLER_SAMPLE", "FreeInit"),
    Need("comfy.patcher_extension:WrappersMP.DIFFUSION_MODEL", "v1 motion modules' GroupNorm over frames"),
    Need("comfy.patcher_extension:WrapperExecutor", "every wrapper of ours (per-frame noise, context windows, ...)"),
    Need("comfy.patcher_extension:PatcherInjection", "Apply Motion Module (its layers are injected on load)",
         params=("inject", "eject")),
    Need("comfy.samplers:CFGGuider.outer_sample", "per-frame noise, context windows, FreeNoise and the live preview",
         params=("noise", "latent_image", "sampler", "sigmas", "callback", "seed")),
    Need("comfy.sampler_helpers:prepare_sampling", "context windows' memory estimate",
         params=("model", "noise_shape", "conds", "model_options")),
    Need("comfy.samplers:KSAMPLER.sample", "FreeInit",
         params=("sigmas", "extra_args", "callback", "noise", "latent_image", "denoise_mask", "disable_pbar")),
    Need("comfy.ldm.modules.diffusionmodules.openaimodel:UNetModel._forward",
         "v1 motion modules' GroupNorm over frames", params=("x", "transformer_options")),
)


def _kind(kind: str) -> str:
    return getattr(comfy.patcher_extension.WrappersMP, kind)


def add(model_patcher, kind: str, key: str, wrapper: Callable, outermost: bool = False) -> None:
    """Add `wrapper` of `kind` under `key`, replacing ours of that key. Wrappers run in the order they were added,
    the first outermost; `outermost` puts this one first, before wrappers other nodes added earlier."""
    remove(model_patcher, kind, key)
    if not outermost:
        model_patcher.add_wrapper_with_key(_kind(kind), key, wrapper)
        return
    wrappers = model_patcher.wrappers.setdefault(_kind(kind), {})
    others = dict(wrappers)
    wrappers.clear()
    wrappers[key] = [wrapper]
    wrappers.update(others)


def remove(model_patcher, kind: str, key: str) -> None:
    model_patcher.remove_wrappers_with_key(_kind(kind), key)


def of_key(model_patcher, kind: str, key: str) -> list[Callable]:
    """Our wrappers of `kind` under `key` on this model, in the order they run."""
    return list(model_patcher.get_wrappers(_kind(kind), key))


def injection(inject: Callable, eject: Callable):
    """The host's PatcherInjection: `inject(patcher)` when the model loads, `eject(patcher)` when it unloads."""
    return comfy.patcher_extension.PatcherInjection(inject=inject, eject=eject)


class WrappedCall:
    """The arguments of one wrapped host call, read and replaced by name, passed on the way they came."""

    def __init__(self, executor, args: tuple, kwargs: dict):
        self.executor = executor
        self.args = tuple(args)
        self.kwargs = dict(kwargs)
        signature = inspect.signature(executor.original)
        self._names = list(signature.parameters)
        self._bound = signature.bind_partial(*self.args, **self.kwargs)
        self._bound.apply_defaults()

    @property
    def conds(self) -> dict:
        """The guider's conditionings by name ("positive", "negative"), as the sampler node handed them over."""
        return self.executor.class_obj.conds

    @property
    def host_object(self) -> Any:
        """The object whose method is wrapped (the guider for OUTER_SAMPLE, the sampler for SAMPLER_SAMPLE)."""
        return self.executor.class_obj

    def __getitem__(self, name: str) -> Any:
        return self._bound.arguments[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self._bound.arguments.get(name, default)

    def replace(self, **values: Any) -> WrappedCall:
        """The same call with some arguments replaced, each passed by position or keyword as it came."""
        args, kwargs = list(self.args), dict(self.kwargs)
        for name, value in values.items():
            i = self._names.index(name)
            if name in kwargs or i >= len(args):
                kwargs[name] = value
            else:
                args[i] = value
        return WrappedCall(self.executor, tuple(args), kwargs)

    def __call__(self) -> Any:
        """Run the rest of the wrapped call (inner wrappers, then the host's function)."""
        return self.executor(*self.args, **self.kwargs)
