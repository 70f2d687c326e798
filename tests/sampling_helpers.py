"""Sampling a tiny SD1.5-shaped model through ComfyUI's own sampler nodes, for tests that need whole sampling runs.

The UNet is motion_helpers' small one (channels divided by 10), conditioning a random tensor of its context
width, latents 8×8: a step costs milliseconds, so tests can afford several runs and several samplers.
"""

from __future__ import annotations

import torch
from conftest import call_node
from motion_helpers import SMALL_CONTEXT_DIM

SIZE = 64  # pixels: 8×8 latents


def conditioning(seed: int = 0) -> tuple[list, list]:
    gen = torch.Generator().manual_seed(seed)
    positive = [[torch.randn(1, 77, SMALL_CONTEXT_DIM, generator=gen), {}]]
    negative = [[torch.randn(1, 77, SMALL_CONTEXT_DIM, generator=gen), {}]]
    return positive, negative


def latent(frames: int) -> dict:
    return call_node("EmptyLatentImage", width=SIZE, height=SIZE, batch_size=frames)[0]


def ksampler(model, frames: int, seed: int = 5, steps: int = 2, cfg: float = 2.0, sampler: str = "euler",
             scheduler: str = "normal", denoise: float = 1.0, latent_image: dict | None = None) -> torch.Tensor:
    positive, negative = conditioning()
    out = call_node("KSampler", model=model, seed=seed, steps=steps, cfg=cfg, sampler_name=sampler,
                    scheduler=scheduler, positive=positive, negative=negative,
                    latent_image=latent_image or latent(frames), denoise=denoise)[0]["samples"]
    assert torch.isfinite(out).all()
    return out


def ksampler_advanced(model, frames: int, seed: int = 5, steps: int = 2, cfg: float = 2.0,
                      sampler: str = "euler", add_noise: str = "enable") -> torch.Tensor:
    positive, negative = conditioning()
    out = call_node("KSamplerAdvanced", model=model, add_noise=add_noise, noise_seed=seed, steps=steps, cfg=cfg,
                    sampler_name=sampler, scheduler="normal", positive=positive, negative=negative,
                    latent_image=latent(frames), start_at_step=0, end_at_step=10000,
                    return_with_leftover_noise="disable")[0]["samples"]
    assert torch.isfinite(out).all()
    return out


def _run_v3(cls, **inputs) -> tuple:
    """ComfyUI's own V3 node class run directly: comfy_extras nodes are not loaded in-process."""
    return tuple(cls.PREPARE_CLASS_CLONE({}).EXECUTE_NORMALIZED(**inputs).args)


def sampler_custom_advanced(model, frames: int, seed: int = 5, steps: int = 2, cfg: float = 2.0,
                            sampler: str = "euler") -> torch.Tensor:
    import comfy_extras.nodes_custom_sampler as custom

    positive, negative = conditioning()
    (guider,) = _run_v3(custom.CFGGuider, model=model, positive=positive, negative=negative, cfg=cfg)
    (noise,) = _run_v3(custom.RandomNoise, noise_seed=seed)
    (sampler_object,) = _run_v3(custom.KSamplerSelect, sampler_name=sampler)
    (sigmas,) = _run_v3(custom.BasicScheduler, model=model, scheduler="normal", steps=steps, denoise=1.0)
    out = _run_v3(custom.SamplerCustomAdvanced, noise=noise, guider=guider, sampler=sampler_object, sigmas=sigmas,
                  latent_image=latent(frames))[0]["samples"]
    assert torch.isfinite(out).all()
    return out
