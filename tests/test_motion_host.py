"""txt2vid through ComfyUI's own KSampler with the full-size random SD1.5 checkpoint and every SD1.5 format.

64 px, 8 frames, 1 step: enough to run every code path of the motion module inside the real UNet with
cond and uncond batched together, while keeping CI time small.
"""

from __future__ import annotations

import pytest
import torch
from conftest import call_node

FRAMES = 8


def sample(model, clip, frames: int, seed: int = 7, cfg: float = 4.0, sampler: str = "euler") -> torch.Tensor:
    (positive,) = call_node("CLIPTextEncode", clip=clip, text="a boat on a lake")
    (negative,) = call_node("CLIPTextEncode", clip=clip, text="blurry")
    (latent,) = call_node("EmptyLatentImage", width=64, height=64, batch_size=frames)
    (out,) = call_node("KSampler", model=model, seed=seed, steps=1, cfg=cfg, sampler_name=sampler,
                       scheduler="normal", positive=positive, negative=negative, latent_image=latent, denoise=1.0)
    return out["samples"]


@pytest.fixture(scope="module")
def motion(motion_module_file):
    """Load Motion Module, keeping only the last format loaded: a full-size module is 1.7 GB in float32, so
    tests are ordered to reuse it while holding one at a time keeps the CI machine's memory free."""
    cache = {}

    def get(fmt: str):
        if fmt not in cache:
            cache.clear()
            cache[fmt] = call_node("AnimateFlow_LoadMotionModule", model_name=motion_module_file(fmt))[0]
        return cache[fmt]

    return get


@pytest.fixture(scope="module")
def unpatched(sd15):
    """The checkpoint's own video (frames sampled independently) per sampler setting: what no motion gives."""
    cache = {}

    def get(cfg: float, sampler: str) -> torch.Tensor:
        if (cfg, sampler) not in cache:
            cache[(cfg, sampler)] = sample(sd15[0], sd15[1], FRAMES, cfg=cfg, sampler=sampler)
        return cache[(cfg, sampler)]

    return get


def apply(model, module):
    return call_node("AnimateFlow_ApplyMotionModule", model=model, motion_module=module, motion_scale=1.0,
                     beta_schedule="auto")[0]


@pytest.mark.parametrize("fmt", ["animatelcm", "v3", "v2", "v1"])
def test_txt2vid_with_each_sd15_format(sd15, motion, unpatched, fmt):
    """Every frame differs from the same sampling without the motion module: its layers ran inside the real UNet
    on every frame (a module left out, or one that adds nothing, gives the checkpoint's frames back)."""
    model, clip, _ = sd15
    cfg, sampler = (1.5, "lcm") if fmt == "animatelcm" else (4.0, "euler")
    samples = sample(apply(model, motion(fmt)), clip, FRAMES, cfg=cfg, sampler=sampler)
    assert samples.shape == (FRAMES, 4, 8, 8)
    assert torch.isfinite(samples).all()
    change = (samples - unpatched(cfg, sampler)).flatten(1).norm(dim=1) / unpatched(cfg, sampler).flatten(1).norm(dim=1)
    assert (change > 1e-4).all(), change


def test_base_model_is_bit_identical_before_and_after_an_animatediff_run(sd15, motion, unpatched):
    """v1 exercises every kind of patch at once: injected layers, GroupNorm forwards, a wrapper, new betas."""
    model, clip, _ = sd15
    before = unpatched(4.0, "euler")
    video = sample(apply(model, motion("v1")), clip, FRAMES)
    after = sample(model, clip, FRAMES)
    assert torch.equal(before, after)
    assert not torch.equal(video, before)


def test_one_and_two_frame_videos(sd15, motion):
    model, clip, _ = sd15
    applied = apply(model, motion("v1"))
    for frames in (1, 2):
        samples = sample(applied, clip, frames)
        assert samples.shape == (frames, 4, 8, 8) and torch.isfinite(samples).all()


def test_motion_lora_node_stacks_on_v2(sd15, motion, motion_lora_file):
    model, clip, _ = sd15
    v2 = motion("v2")
    (same,) = call_node("AnimateFlow_MotionLoRALoader", motion_module=v2, lora_name=motion_lora_file, strength=0.0)
    assert same is v2
    (one,) = call_node("AnimateFlow_MotionLoRALoader", motion_module=v2, lora_name=motion_lora_file, strength=0.5)
    (two,) = call_node("AnimateFlow_MotionLoRALoader", motion_module=one, lora_name=motion_lora_file, strength=0.5)
    plain = sample(apply(model, v2), clip, 2)
    patched = sample(apply(model, two), clip, 2)
    assert torch.isfinite(patched).all()
    assert not torch.equal(plain, patched)
    assert torch.equal(sample(apply(model, v2), clip, 2), plain), "the LoRA must not stay on the shared module"
