"""Per-frame noise: frame i's noise depends only on (seed, i), so a longer video keeps the start of a shorter one.

ComfyUI draws a sampler's noise from one generator over the whole batch. Its CPU generator happens to fill the
initial noise front to back, but every later draw (the fresh noise of ancestral and SDE samplers, LCM's re-noising,
FreeInit's high frequencies) starts after the whole previous batch, and CUDA generators lay numbers out by batch
size: so frame 3 of a 32-frame render is not frame 3 of the 16-frame one. Here each frame has generators of its
own, seeded from (seed, frame, stream), for the initial noise and for every draw a sampler makes.

The maths (seeds, noise, the noise sampler) needs torch alone; the host's sampler and wrapper come through host/.
"""

from __future__ import annotations

import logging

import torch

from ..host import sampling as host_sampling
from ..host import wrappers
from .errors import SamplingError

log = logging.getLogger(__name__)

MODES = ("per_frame", "comfyui")
MODEL_OPTION = "animateflow_noise_mode"
WRAPPER_KEY = "AnimateFlow_frame_noise"
INITIAL, STEPS, FREEINIT = 0, 1, 2  # independent streams per frame: initial noise, sampler draws, FreeInit
_MASK64 = (1 << 64) - 1


def _splitmix64(value: int) -> int:
    """A well-mixed 64-bit integer from any integer (Steele et al.'s SplitMix64 finaliser)."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


def frame_seed(seed: int, frame: int, stream: int = INITIAL) -> int:
    """The generator seed of one frame's noise in one stream; distinct (seed, frame, stream) give unrelated seeds."""
    mixed = _splitmix64(_splitmix64(_splitmix64(int(seed) & _MASK64) ^ int(frame)) ^ int(stream))
    return mixed & ((1 << 63) - 1)


def frame_noise(shape: torch.Size | tuple, seed: int, stream: int = INITIAL, dtype=torch.float32,
                layout=torch.strided, first_frame: int = 0) -> torch.Tensor:
    """Noise of `shape` (frames first) on the CPU, each frame from its own generator."""
    frames = []
    for i in range(shape[0]):
        generator = torch.Generator().manual_seed(frame_seed(seed, first_frame + i, stream))
        frames.append(torch.randn(tuple(shape[1:]), generator=generator, dtype=dtype, layout=layout))
    return torch.stack(frames)


class FrameNoiseSampler:
    """A k-diffusion `noise_sampler`: every call returns the next noise of each frame's own generator.

    The n-th draw of frame i depends on (seed, i, n) only. Generators live on the CPU (as ComfyUI's initial
    noise does) so the values are the same on every device.
    """

    def __init__(self, shape: torch.Size | tuple, seed: int, dtype=torch.float32, stream: int = STEPS):
        self.shape = tuple(shape)
        self.dtype = dtype
        self.generators = [torch.Generator().manual_seed(frame_seed(seed, i, stream)) for i in range(self.shape[0])]

    def __call__(self, sigma=None, sigma_next=None) -> torch.Tensor:
        noise = torch.stack([torch.randn(self.shape[1:], generator=g) for g in self.generators]).to(self.dtype)
        device = sigma.device if isinstance(sigma, torch.Tensor) else "cpu"
        return noise.to(device)


def with_frame_noise_sampler(sampler, shape: torch.Size | tuple, seed: int, dtype):
    """A copy of a KSAMPLER whose per-step noise is per frame, or the sampler itself when it draws none.

    Samplers that accept `noise_sampler` (ancestral, SDE, LCM, DDPM, ...) get ours; a user-given one is kept.
    For SDE samplers this replaces their Brownian tree with independent draws per call, as their
    `noise_sampler` argument allows.
    """
    if not host_sampling.sampler_accepts(sampler, "noise_sampler"):
        return sampler
    return host_sampling.sampler_with_option(sampler, "noise_sampler", FrameNoiseSampler(shape, seed, dtype))


def outer_sample_wrapper(executor, *args, **kwargs):
    """OUTER_SAMPLE wrapper: replaces the drawn noise (every sampler node has drawn it by now) and the sampler's
    per-step noise with per-frame noise. All-zero noise (add_noise disabled) stays zero."""
    call = wrappers.WrappedCall(executor, args, kwargs)
    noise, seed = call["noise"], call.get("seed")
    if seed is None or noise.is_nested or noise.ndim < 2:
        log.info("AnimateFlow per-frame noise: no seed reached the sampler; keeping its own noise.")
        return call()
    if torch.count_nonzero(noise):
        noise = frame_noise(noise.shape, seed, INITIAL, noise.dtype, noise.layout).to(noise.device)
    sampler = with_frame_noise_sampler(call["sampler"], noise.shape, seed, noise.dtype)
    return call.replace(noise=noise, sampler=sampler)()


def fresh_noise(like: torch.Tensor, seed: int, stream: int, per_frame: bool) -> torch.Tensor:
    """New noise shaped like `like` for a later draw (FreeInit): per frame, or ComfyUI-style from one generator."""
    if per_frame:
        noise = frame_noise(like.shape, seed, stream, like.dtype)
    else:
        generator = torch.Generator().manual_seed(frame_seed(seed, 0, stream))
        noise = torch.randn(like.shape, generator=generator, dtype=like.dtype)
    return noise.to(like.device)


def attach(model_patcher, mode: str) -> None:
    """Sample the (already cloned) model with per-frame noise, or leave ComfyUI's ("comfyui").

    Our wrapper goes first among OUTER_SAMPLE wrappers, so wrappers that rearrange noise (FreeNoise) see
    per-frame noise whichever node was applied first.
    """
    if mode not in MODES:
        raise SamplingError(f"unknown mode {mode!r}", f"choose one of {', '.join(MODES)}.", input="mode")
    wrappers.remove(model_patcher, wrappers.OUTER_SAMPLE, WRAPPER_KEY)
    model_patcher.model_options[MODEL_OPTION] = mode
    if mode != "comfyui":
        wrappers.add(model_patcher, wrappers.OUTER_SAMPLE, WRAPPER_KEY, outer_sample_wrapper, outermost=True)


def is_per_frame(model_options: dict) -> bool:
    return model_options.get(MODEL_OPTION) == "per_frame"
