"""FreeNoise: later windows start from shuffled copies of the first window's noise, so windows agree.

Independent noise per window lets each window drift to its own content; FreeNoise (Qiu et al. 2023, as the
original extension's `animatediff_freenoise.py` does it) refills each new stretch of frames with a permutation
of the frames one window earlier, so every window sees the same noise, reordered.
"""

from __future__ import annotations

import torch


def freenoise_shuffle(noise: torch.Tensor, length: int, stride: int, seed: int) -> torch.Tensor:
    """A copy of `noise` [frames, ...] where frames from `length` on repeat earlier frames, shuffled per stride."""
    out = noise.clone()
    frames = out.size(0)
    generator = torch.Generator().manual_seed(seed)
    for start in range(length, frames, stride):
        count = min(stride, frames - start)
        source = torch.arange(start - length, start - length + stride)[torch.randperm(stride, generator=generator)]
        out[start:start + count] = out[source[:count]]
    return out


def outer_sample_wrapper(executor, noise: torch.Tensor, *args, **kwargs):
    """OUTER_SAMPLE wrapper: every sampler node draws its noise before this point, so one place serves them all."""
    handler = executor.class_obj.model_options.get("context_handler")
    if handler is not None and noise.ndim > 1 and noise.size(0) > handler.context_length:
        seed = kwargs.get("seed")
        if seed is None and len(args) >= 7:
            seed = args[6]
        stride = handler.context_length - handler.context_overlap
        noise = freenoise_shuffle(noise, handler.context_length, stride, int(seed or 0))
    return executor(noise, *args, **kwargs)
