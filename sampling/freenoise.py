"""FreeNoise: every window of the video starts from the same noise, reordered, so windows agree on content.

Independent noise per window lets each window drift to its own content. FreeNoise (Qiu et al. 2023, as the original
extension's `animatediff_freenoise.py` does it) keeps the first window's noise and refills each following stretch of
`length - overlap` frames with a shuffle of the frames one window earlier. A window that starts a whole number of
stretches in (the static layout: 0, stride, 2·stride, ..., the last one slid back to end on the last frame) then
holds exactly the first window's noise frames, reordered. The last stretch is usually shorter than the others; it is
filled from the first frames of the window before it, as many as it holds, so the last window holds no frame twice
and misses none. This is the leading pack's FreeNoise (and ComfyUI 0.8.0 core's) draw for draw: same seed, same noise.
"""

from __future__ import annotations

import torch


def freenoise_shuffle(noise: torch.Tensor, length: int, stride: int, seed: int) -> torch.Tensor:
    """A copy of `noise` [frames, ...] whose frames from `length` on repeat earlier frames, shuffled per stretch."""
    out = noise.clone()
    frames = out.size(0)
    generator = torch.Generator().manual_seed(seed)
    for start in range(length, frames, stride):
        count = min(stride, frames - start)
        source = (start - length) + torch.randperm(count, generator=generator)
        out[start:start + count] = out[source]
    return out
