"""Per-frame noise: a 32-frame render starts with the 16-frame render of the same seed, with every sampler node.

Without a motion module a tiny model denoises each frame on its own, so equal first frames mean equal noise for
those frames at every draw: the initial noise and every ancestral/LCM draw. ComfyUI's own noise fails this as soon
as a sampler draws twice (the second draw starts after the whole first batch).
"""

from __future__ import annotations

import pytest
import torch
from conftest import call_node, pack_module
from sampling_helpers import ksampler, ksampler_advanced, sampler_custom_advanced

noise = pack_module("sampling.noise")



def per_frame(model, mode="per_frame"):
    return call_node("AnimateFlow_PerFrameNoise", model=model, mode=mode)[0]


def test_frame_noise_depends_only_on_seed_and_frame():
    short = noise.frame_noise((3, 4, 8, 8), seed=11)
    long = noise.frame_noise((7, 4, 8, 8), seed=11)
    assert torch.equal(long[:3], short)
    assert torch.equal(noise.frame_noise((2, 4, 8, 8), seed=11, first_frame=5), long[5:7])
    assert not torch.equal(noise.frame_noise((3, 4, 8, 8), seed=12), short)
    assert not torch.equal(noise.frame_noise((3, 4, 8, 8), seed=11, stream=noise.STEPS), short)
    assert abs(long.mean()) < 0.1 and abs(long.std() - 1) < 0.1
    seeds = {noise.frame_seed(s, f, st) for s in range(20) for f in range(20) for st in range(3)}
    assert len(seeds) == 20 * 20 * 3


def test_frame_noise_sampler_draws_per_frame_sequences():
    short, long = noise.FrameNoiseSampler((2, 4, 8, 8), seed=3), noise.FrameNoiseSampler((5, 4, 8, 8), seed=3)
    for _ in range(3):
        assert torch.equal(long()[:2], short())


@pytest.mark.parametrize("run, sampler", [(ksampler, "euler_ancestral"), (ksampler, "lcm"), (ksampler, "dpmpp_2m_sde"),
                                          (ksampler_advanced, "euler_ancestral"),
                                          (sampler_custom_advanced, "euler_ancestral")],
                         ids=["KSampler-euler_ancestral", "KSampler-lcm", "KSampler-dpmpp_2m_sde",
                              "KSamplerAdvanced-euler_ancestral", "SamplerCustomAdvanced-euler_ancestral"])
def test_first_16_frames_of_32_equal_the_16_frame_render(small_model, run, sampler):
    model = per_frame(small_model)
    short = run(model, 16, seed=9, steps=3, sampler=sampler)
    long = run(model, 32, seed=9, steps=3, sampler=sampler)
    torch.testing.assert_close(long[:16], short, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(long[16:], long[:16], atol=1e-2), "later frames get noise of their own"


def test_comfyui_mode_is_comfyuis_noise_and_differs_when_extended(small_model):
    plain_short = ksampler(small_model, 16, seed=9, steps=3, sampler="euler_ancestral")
    kept = per_frame(small_model, "comfyui")
    assert torch.equal(ksampler(kept, 16, seed=9, steps=3, sampler="euler_ancestral"), plain_short)
    plain_long = ksampler(small_model, 32, seed=9, steps=3, sampler="euler_ancestral")
    assert (plain_long[:16] - plain_short).abs().max() > 0.1, "ComfyUI's noise changes with the batch size"


def test_disabled_noise_stays_disabled(small_model):
    model = per_frame(small_model)
    assert torch.equal(ksampler_advanced(model, 4, add_noise="disable"),
                       ksampler_advanced(small_model, 4, add_noise="disable"))


def test_per_frame_noise_runs_before_freenoise_whichever_node_comes_first(small_model):
    from comfy.patcher_extension import WrappersMP

    options = call_node("AnimateFlow_ContextOptions", context_length=4, context_stride=1, context_overlap=1,
                        closed_loop=False, schedule="uniform", fuse_method="pyramid", freenoise=True)[0]
    windowed = call_node("AnimateFlow_SetContextOptions", model=small_model, context_options=options)[0]
    for model in (per_frame(windowed),
                  call_node("AnimateFlow_SetContextOptions", model=per_frame(small_model), context_options=options)[0]):
        keys = list(model.wrappers[WrappersMP.OUTER_SAMPLE])
        assert keys.index(noise.WRAPPER_KEY) < keys.index("AnimateFlow_context_windows")
