"""Sliding context windows on ComfyUI's own hook, `model_options["context_handler"]`.

`calc_cond_batch` (comfy/samplers.py) hands every model evaluation to the handler, which runs the UNet (and the
motion module inside it) once per window of frames and fuses the windows' predictions per frame. Building on the
host's `IndexListContextHandler` keeps every sampler, scheduler and KSampler variant working, and progress stays
per step because the sampler, not the handler, reports it.

What we add over the core handler: the original extension's schedules and fuse weights (context_schedules.py),
a step index that never fails on samplers that evaluate between sigmas, slicing of every per-frame conditioning
(the core misses per-frame cross-attention at dim 0, which prompt travel needs), and per-window ControlNet hints.
"""

from __future__ import annotations

from typing import Callable

import torch

import comfy.context_windows as core
import comfy.patcher_extension
from comfy.context_windows import IndexListContextHandler, IndexListContextWindow

from . import context_schedules, freenoise
from .context_options import ContextOptions

HANDLER_KEY = "context_handler"
WRAPPER_KEY = "AnimateFlow_context_windows"


class FrameWindow(IndexListContextWindow):
    """The core window, indexed with a tuple as current torch requires (a list index is deprecated)."""

    def get_tensor(self, full: torch.Tensor, device=None, dim=None) -> torch.Tensor:
        dim = self.dim if dim is None else dim
        if dim == 0 and full.shape[dim] == 1:
            return full
        return full[(slice(None),) * dim + (self.index_list,)].to(device)

    def add_window(self, full: torch.Tensor, to_add: torch.Tensor, dim=None) -> torch.Tensor:
        dim = self.dim if dim is None else dim
        full[(slice(None),) * dim + (self.index_list,)] += to_add
        return full


class AnimateFlowContextHandler(IndexListContextHandler):
    """Windows over the batch axis (frames) of the latent, per the user's Context Options."""

    def __init__(self, options: ContextOptions):
        super().__init__(
            context_schedule=core.ContextSchedule(options.schedule, self._schedule),
            fuse_method=core.ContextFuseMethod(options.fuse_method, self._weights),
            context_length=options.context_length,
            context_overlap=options.resolved_overlap,
            context_stride=options.context_stride,
            closed_loop=options.closed_loop,
            dim=0,
        )
        self.options = options
        self._hints: dict[int, tuple] = {}

    def _schedule(self, num_frames: int, handler: IndexListContextHandler, model_options: dict) -> list[list[int]]:
        return context_schedules.context_windows(self.options.schedule, num_frames, self.context_length,
                                                 self.context_overlap, self.context_stride, self._step, self.closed_loop)

    def get_context_windows(self, model, x_in: torch.Tensor, model_options: dict) -> list[FrameWindow]:
        return [FrameWindow(w, dim=0) for w in self._schedule(x_in.size(0), self, model_options)]

    def _weights(self, length: int, **kwargs) -> list[float]:
        return context_schedules.fuse_weights(self.options.fuse_method, length)

    def should_use_context(self, model, conds, x_in: torch.Tensor, timestep, model_options: dict) -> bool:
        return x_in.size(0) > self.context_length

    def set_step(self, timestep: torch.Tensor, model_options: dict) -> None:
        """The original shifts windows by the sampling step; a sigma between two steps counts as the earlier one."""
        sigmas = model_options["transformer_options"]["sample_sigmas"]
        sigma = float(timestep.reshape(-1)[0])
        at_or_above = (sigmas >= sigma * (1 - 1e-4)).nonzero()
        self._step = int(at_or_above[-1].item()) if at_or_above.numel() else 0

    def execute(self, calc_cond_batch: Callable, model, conds, x_in: torch.Tensor, timestep, model_options: dict):
        try:
            return super().execute(calc_cond_batch, model, conds, x_in, timestep, model_options)
        finally:
            self._restore_hints()

    def get_resized_cond(self, cond_in: list[dict] | None, x_in: torch.Tensor, window: IndexListContextWindow,
                         device=None) -> list | None:
        if cond_in is None:
            return None
        frames = x_in.size(0)
        resized = []
        for cond in cond_in:
            out = dict(cond)
            for key, item in cond.items():
                if isinstance(item, torch.Tensor):
                    out[key] = window.get_tensor(item, device) if _per_frame(item, frames) else item.to(device)
                elif key == "control":
                    self._window_controls(item, window, frames)
                elif key == "model_conds":
                    out[key] = {name: _slice_model_cond(value, window, frames, device) for name, value in item.items()}
            resized.append(out)
        return resized

    def _window_controls(self, control, window: IndexListContextWindow, frames: int) -> None:
        """A per-frame hint batch would otherwise be cut to its first frames by ControlNet's own broadcasting."""
        while control is not None:
            saved = self._hints.setdefault(id(control), (control, control.cond_hint_original,
                                                         list(control.extra_concat_orig)))
            _, hint, concat = saved
            if hint is not None and _per_frame(hint, frames):
                control.cond_hint_original = window.get_tensor(hint)
                control.cond_hint = None
            if any(_per_frame(c, frames) for c in concat):
                control.extra_concat_orig = [window.get_tensor(c) if _per_frame(c, frames) else c for c in concat]
                control.cond_hint = None
            control = control.previous_controlnet

    def _restore_hints(self) -> None:
        for control, hint, concat in self._hints.values():
            control.cond_hint_original = hint
            control.extra_concat_orig = concat
            control.cond_hint = None
        self._hints.clear()


def _per_frame(tensor: torch.Tensor, frames: int) -> bool:
    return tensor.ndim > 0 and tensor.size(0) == frames


def _slice_model_cond(value, window: IndexListContextWindow, frames: int, device):
    cond = getattr(value, "cond", None)
    if isinstance(cond, torch.Tensor) and _per_frame(cond, frames):
        return value._copy_with(window.get_tensor(cond, device))
    return value


def attach_context_options(model_patcher, options: ContextOptions) -> None:
    """Make sampling with this (already cloned) model run in context windows; the caller owns the clone."""
    model_patcher.model_options[HANDLER_KEY] = AnimateFlowContextHandler(options)
    prepare, outer = comfy.patcher_extension.WrappersMP.PREPARE_SAMPLING, comfy.patcher_extension.WrappersMP.OUTER_SAMPLE
    # Attaching twice (Set Context Options, then Apply Motion Module) must replace, not stack, our wrappers.
    model_patcher.remove_wrappers_with_key(prepare, WRAPPER_KEY)
    model_patcher.remove_wrappers_with_key(outer, WRAPPER_KEY)
    # Size the memory estimate for one window, not the whole video, or long videos would offload needlessly.
    model_patcher.add_wrapper_with_key(prepare, WRAPPER_KEY, core._prepare_sampling_wrapper)
    if options.freenoise:
        model_patcher.add_wrapper_with_key(outer, WRAPPER_KEY, freenoise.outer_sample_wrapper)
