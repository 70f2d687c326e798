"""FreeInit (Wu et al. 2023, "FreeInit: Bridging Initialization Gap in Video Diffusion Models").

Video models are trained on noised real videos, whose low spatio-temporal frequencies are not pure noise, but
sample from pure noise: FreeInit samples once, re-noises the result to the starting noise level, keeps its low
frequencies (3-D FFT over frames × height × width) and replaces the high ones by fresh noise, and samples again,
for a few iterations. The paper's defaults: a Butterworth low-pass of order 4 with normalised cut-offs
d_s = d_t = 0.25 (the official code's `freeinit_utils.py` and its example configs).

The loop wraps ComfyUI's SAMPLER_SAMPLE step, inside every sampler node and outside the model calls: KSampler,
KSamplerAdvanced and SamplerCustomAdvanced all run it, context windows run inside each iteration, and noise
rewrites (per-frame noise, FreeNoise) have already happened when it starts. In ComfyUI's terms, iteration k
starts from x = LPF(x0 + σ₀·ε₀) + HPF(start(σ₀, ε_k)), where x0 is the previous result, ε₀ the first iteration's
noise (the paper's `add_noise` to σ₀ with the initial noise), and start(σ, ε) the sampler's own noised start
(`noise_scaling`, which for an empty latent is the paper's fresh z_rand at T).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch

from ..host import transformer_options as keys
from ..host import wrappers
from . import noise as frame_noise
from .errors import SamplingError

log = logging.getLogger(__name__)

FILTERS = ("butterworth", "gaussian", "ideal")
WRAPPER_KEY = "AnimateFlow_FreeInit"
_FFT_DIMS = (0, 2, 3)  # frames, height, width of a (frames, channels, height, width) latent batch


@dataclass(frozen=True)
class FreeInitOptions:
    iterations: int = 3
    filter: str = "butterworth"
    d_s: float = 0.25
    d_t: float = 0.25
    order: int = 4
    coarse_to_fine: bool = False

    def __post_init__(self) -> None:
        if self.iterations < 1:
            raise SamplingError(f"iterations must be at least 1 (got {self.iterations})", "1 is plain sampling.",
                                input="iterations")
        if self.filter not in FILTERS:
            _unknown_filter(self.filter)
        for name in ("d_s", "d_t"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise SamplingError(f"{name} must be between 0 and 1 (got {value})", "the paper uses 0.25.",
                                    input=name)
        if self.order < 1:
            raise SamplingError(f"order must be at least 1 (got {self.order})", "the paper uses 4.", input="order")


def _unknown_filter(kind: str):
    raise SamplingError(f"unknown filter {kind!r}", f"choose one of {', '.join(FILTERS)}.", input="filter")


def normalized_frequencies(n: int) -> torch.Tensor:
    """Signed frequency of each FFT bin in units of the Nyquist frequency, in [-1, 1), unshifted (FFT) order."""
    return torch.fft.fftfreq(n, dtype=torch.float64) * 2


def low_pass_filter(kind: str, frames: int, height: int, width: int, d_s: float = 0.25, d_t: float = 0.25,
                    order: int = 4) -> torch.Tensor:
    """The paper's 3-D low-pass masks, (frames, height, width) in FFT order, 1 at the zero frequency.

    With normalised frequencies (f_t, f_h, f_w), d² = ((d_s / d_t)·f_t)² + f_h² + f_w² is the squared distance
    scaled so the temporal cut-off d_t lands where the spatial one d_s does:
    gaussian exp(-d² / (2·d_s²)); butterworth 1 / (1 + (d² / d_s²)^order); ideal 1 where d ≤ d_s.
    The official code writes the ideal mask as d² ≤ 2·d_s, which is not the radius the other two use; here all
    three share the cut-off d_s. The official code measures frequencies after fftshift as 2t/T - 1, which equals
    these for even sizes and is off by 1/T for odd ones. d_s or d_t of 0 keeps no low frequencies.
    """
    if kind not in FILTERS:
        _unknown_filter(kind)
    if d_s == 0 or d_t == 0:
        return torch.zeros(frames, height, width)
    t = normalized_frequencies(frames) * (d_s / d_t)
    h = normalized_frequencies(height)
    w = normalized_frequencies(width)
    d2 = t[:, None, None] ** 2 + h[None, :, None] ** 2 + w[None, None, :] ** 2
    if kind == "gaussian":
        mask = torch.exp(-d2 / (2 * d_s ** 2))
    elif kind == "butterworth":
        mask = 1 / (1 + (d2 / d_s ** 2) ** order)
    else:
        mask = (d2 <= d_s ** 2).double()
    return mask.float()


def freq_mix_3d(x: torch.Tensor, noise: torch.Tensor, lpf: torch.Tensor) -> torch.Tensor:
    """Low frequencies of `x` plus high frequencies of `noise`: (frames, channels, h, w), `lpf` (frames, h, w)."""
    mask = lpf.to(x.device)[:, None].to(torch.float64)
    x_freq = torch.fft.fftn(x.to(torch.float64), dim=_FFT_DIMS)
    noise_freq = torch.fft.fftn(noise.to(x.device, torch.float64), dim=_FFT_DIMS)
    mixed = x_freq * mask + noise_freq * (1 - mask)
    return torch.fft.ifftn(mixed, dim=_FFT_DIMS).real.to(x.dtype)


def iteration_steps(total_steps: int, iterations: int, iteration: int, coarse_to_fine: bool) -> int:
    """Steps of iteration `iteration` (0-based): all of them, or the paper's coarse-to-fine share
    int(steps / iterations · (iteration + 1)), at least 1, so the last iteration runs all steps."""
    if not coarse_to_fine:
        return total_steps
    return max(1, min(total_steps, int(total_steps / iterations * (iteration + 1))))


def subsample_sigmas(sigmas: torch.Tensor, steps: int) -> torch.Tensor:
    """`steps` steps out of a schedule of len(sigmas) - 1, evenly spread, from the same first to the same last sigma.

    The sampler node has already turned its scheduler into sigmas, so fewer steps of the same schedule are
    taken from them rather than by asking the scheduler again (the paper calls its scheduler with fewer steps).
    """
    total = len(sigmas) - 1
    if steps >= total:
        return sigmas
    index = torch.linspace(0, total, steps + 1, dtype=torch.float64).round().long()
    return sigmas[index.to(sigmas.device)]


def _start_noise(model_sampling, sigma, target: torch.Tensor, latent_image: torch.Tensor, max_denoise: bool):
    """The noise that makes the sampler start at `target`: it computes noise_scaling(σ, noise, latent), which is
    affine in noise (noise·σ + latent for ε and v models), so solve that for noise, keeping the latent as it is
    (a denoise mask still restores the original latent where it keeps it)."""
    zeros = torch.zeros_like(target)
    base = model_sampling.noise_scaling(sigma, zeros, latent_image, max_denoise)
    unit = model_sampling.noise_scaling(sigma, torch.ones_like(target), zeros, max_denoise)
    return (target - base) / unit


def sampler_sample_wrapper(options: FreeInitOptions):
    """The SAMPLER_SAMPLE wrapper for `options`: the wrapped call (the guider, sigmas, extra_args, callback, noise,
    latent, ...) runs one whole sampler pass; this runs it `iterations` times."""

    def wrapper(executor, *args, **kwargs):
        call = wrappers.WrappedCall(executor, args, kwargs)
        noise = call["noise"]
        if options.iterations == 1 or noise.ndim != 4 or noise.shape[0] < 1:
            return call()
        if not torch.count_nonzero(noise):
            log.info("FreeInit: the sampler adds no noise (add_noise disabled), so there is nothing to "
                     "re-initialise; sampling once.")
            return call()
        guider, sigmas, extra_args = call["model_wrap"], call["sigmas"], call["extra_args"]
        callback, latent_image = call["callback"], call["latent_image"]
        total = len(sigmas) - 1
        steps = [iteration_steps(total, options.iterations, k, options.coarse_to_fine) for k in range(options.iterations)]
        lpf = low_pass_filter(options.filter, noise.shape[0], noise.shape[2], noise.shape[3], options.d_s,
                              options.d_t, options.order)
        model_sampling = guider.inner_model.model_sampling
        seed = int(extra_args.get("seed") or 0)
        per_frame = frame_noise.is_per_frame(extra_args.get("model_options", {}))
        transformer_options = extra_args.get("model_options", {}).get(keys.TRANSFORMER_OPTIONS, {})
        samples = None
        done = 0
        try:
            for k, count in enumerate(steps):
                run_sigmas = subsample_sigmas(sigmas, count)
                start = noise
                if k > 0:
                    sigma = run_sigmas[0]
                    renoised = model_sampling.noise_scaling(sigma, noise, samples, False)
                    max_denoise = call.host_object.max_denoise(guider, run_sigmas)
                    fresh = frame_noise.fresh_noise(noise, seed + k, frame_noise.FREEINIT, per_frame)
                    fresh_start = model_sampling.noise_scaling(sigma, fresh, latent_image, max_denoise)
                    start = _start_noise(model_sampling, sigma, freq_mix_3d(renoised, fresh_start, lpf),
                                         latent_image, max_denoise)
                if keys.SAMPLE_SIGMAS in transformer_options:
                    transformer_options[keys.SAMPLE_SIGMAS] = run_sigmas
                samples = call.replace(sigmas=run_sigmas, callback=_offset_callback(callback, done, sum(steps)),
                                       noise=start)()
                done += count
        finally:
            if keys.SAMPLE_SIGMAS in transformer_options:
                transformer_options[keys.SAMPLE_SIGMAS] = sigmas
        return samples

    return wrapper


def _offset_callback(callback, done: int, total: int):
    """Progress over all iterations: step i of this pass is step done + i of `total`."""
    if callback is None:
        return None
    return lambda step, x0, x, _steps: callback(done + step, x0, x, total)


def attach(model_patcher, options: FreeInitOptions) -> None:
    """Sample the (already cloned) model with FreeInit; one iteration leaves sampling as it is."""
    wrappers.remove(model_patcher, wrappers.SAMPLER_SAMPLE, WRAPPER_KEY)
    if options.iterations > 1:
        wrappers.add(model_patcher, wrappers.SAMPLER_SAMPLE, WRAPPER_KEY, sampler_sample_wrapper(options))
