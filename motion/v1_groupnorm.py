"""v1 GroupNorm: the UNet's ResBlock GroupNorms take statistics over all frames of a video, as v1 was trained.

The GroupNorms never see `transformer_options`, so a DIFFUSION_MODEL wrapper records the frames per video of
the UNet call in progress and the norms read it; an injection swaps their forward while the clone is loaded.
"""

from __future__ import annotations

import functools
import threading

import torch

from ..host import transformer_options as keys
from ..host import wrappers
from ..host.models import ResBlock
from .inject import frames_per_video

KEY = "animateflow_v1_groupnorm"


class _VideoState(threading.local):
    """Frames per video of the UNet call in progress, per thread: core's multigpu sampling runs each device's UNet
    clone on its own thread at the same time."""

    frames: int | None = None


def _groupnorm_over_frames(norm: torch.nn.Module, state: _VideoState, x: torch.Tensor) -> torch.Tensor:
    """GroupNorm with statistics over (C, frames, H, W) of each video."""
    forward = type(norm).forward.__get__(norm)
    frames = state.frames
    if not frames or x.shape[0] % frames:
        return forward(x)
    bf, c, h, w = x.shape
    video = x.reshape(bf // frames, frames, c, h, w).transpose(1, 2)  # b c f h w
    return forward(video).transpose(1, 2).reshape(bf, c, h, w)


def unet_groupnorms(unet) -> list[torch.nn.Module]:
    norms = [m.in_layers[0] for m in unet.modules() if isinstance(m, ResBlock)]
    norms += [m.out_layers[0] for m in unet.modules() if isinstance(m, ResBlock)]
    return norms + [unet.out[0]]


def _diffusion_model_wrapper(state: _VideoState, executor, *args, **kwargs):
    call = wrappers.WrappedCall(executor, args, kwargs)
    state.frames = frames_per_video(call["x"].shape[0], call.get(keys.TRANSFORMER_OPTIONS) or {})
    try:
        return call()
    finally:
        state.frames = None


def _injection(state: _VideoState):
    def inject(patcher):
        for norm in unet_groupnorms(patcher.model.diffusion_model):
            norm.forward = functools.partial(_groupnorm_over_frames, norm, state)

    def eject(patcher):
        for norm in unet_groupnorms(patcher.model.diffusion_model):
            norm.__dict__.pop("forward", None)

    return wrappers.injection(inject, eject)


def attach(model_patcher) -> None:
    """Make the (already cloned) model's GroupNorms work over frames while it is loaded."""
    state = _VideoState()
    model_patcher.set_injections(KEY, [_injection(state)])
    wrappers.add(model_patcher, wrappers.DIFFUSION_MODEL, KEY, functools.partial(_diffusion_model_wrapper, state))
