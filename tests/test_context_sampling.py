"""Sampling in context windows on the host, with the random SD1.5 checkpoint.

Without a motion module every frame is denoised independently, so fusing any set of windows must reproduce the
unwindowed result: that is the independent reference for slicing latents, per-frame conds and ControlNet hints.
"""

import pytest
import torch

from conftest import MODELS, call_node, pack_module
from scripts import fixtures

freenoise = pack_module("sampling.freenoise")
ContextOptions = pack_module("sampling.context_options").ContextOptions


def context_options(**kwargs):
    inputs = dict(context_length=16, context_stride=1, context_overlap=4, closed_loop=False,
                  schedule="uniform", fuse_method="pyramid") | kwargs
    return call_node("AnimateFlow_ContextOptions", **inputs)[0]


def windowed(model, **kwargs):
    return call_node("AnimateFlow_SetContextOptions", model=model, context_options=context_options(**kwargs))[0]


@pytest.fixture(scope="module")
def prompts(sd15):
    _, clip, _ = sd15
    positive = call_node("CLIPTextEncode", clip=clip, text="a cat walking")[0]
    negative = call_node("CLIPTextEncode", clip=clip, text="blurry")[0]
    return positive, negative


def sample(model, positive, negative, frames, size=64, steps=1, seed=3):
    latent = call_node("EmptyLatentImage", width=size, height=size, batch_size=frames)[0]
    out = call_node("KSampler", model=model, seed=seed, steps=steps, cfg=2.0, sampler_name="euler",
                    scheduler="normal", positive=positive, negative=negative, latent_image=latent, denoise=1.0)[0]
    samples = out["samples"]
    assert samples.shape[0] == frames and torch.isfinite(samples).all()
    return samples


def test_short_video_is_exactly_unwindowed(sd15, prompts):
    model = sd15[0]
    plain = sample(model, *prompts, frames=8)
    assert torch.equal(sample(windowed(model), *prompts, frames=8), plain)


def test_motion_module_short_video_is_exactly_unwindowed(sd15, prompts, motion_module_file):
    module = call_node("AnimateFlow_LoadMotionModule", model_name=motion_module_file("v2"))[0]
    plain = call_node("AnimateFlow_ApplyMotionModule", model=sd15[0], motion_module=module, motion_scale=1.0,
                      beta_schedule="auto")[0]
    with_windows = call_node("AnimateFlow_ApplyMotionModule", model=sd15[0], motion_module=module, motion_scale=1.0,
                             beta_schedule="auto", context_options=context_options())[0]
    assert torch.equal(sample(with_windows, *prompts, frames=8), sample(plain, *prompts, frames=8))


def test_windows_fuse_back_to_per_frame_result(sd15, prompts):
    """Two steps: the second shifts the windows (3 windows over 20 frames instead of 2)."""
    model = sd15[0]
    reference = sample(model, *prompts, frames=20, size=32, steps=2)
    result = sample(windowed(model, fuse_method="gaussian"), *prompts, frames=20, size=32, steps=2)
    torch.testing.assert_close(result, reference, rtol=1e-4, atol=1e-4)


def test_long_video_with_motion_module_is_each_window_sampled_alone(sd15, prompts, motion_module_file):
    """48 frames, beyond v2's 32-frame encoding, in static windows of 16 without overlap: each window must be what
    the motion model gives for its 16 latents sampled on their own, the independent reference. The last window is
    checked: latents, conds and the frames the motion module attends over were cut at the right place."""
    module = call_node("AnimateFlow_LoadMotionModule", model_name=motion_module_file("v2"))[0]

    def apply(**options):
        return call_node("AnimateFlow_ApplyMotionModule", model=sd15[0], motion_module=module, motion_scale=1.0,
                         beta_schedule="auto", **options)[0]

    def run(model, start):  # the start latent as given, so a slice of it is the same start for the reference
        return call_node("KSamplerAdvanced", model=model, add_noise="disable", noise_seed=0, steps=1, cfg=2.0,
                         sampler_name="euler", scheduler="normal", positive=prompts[0], negative=prompts[1],
                         latent_image={"samples": start}, start_at_step=0, end_at_step=10000,
                         return_with_leftover_noise="disable")[0]["samples"]

    start = torch.randn(48, 4, 8, 8, generator=torch.Generator().manual_seed(11))
    whole = run(apply(context_options=context_options(schedule="static", context_overlap=0)), start)
    alone = run(apply(), start[32:])
    assert torch.isfinite(whole).all()
    torch.testing.assert_close(whole[32:], alone)


def test_prompt_travel_is_sliced_per_window(sd15, prompts):
    model, clip, _ = sd15
    travel = call_node("AnimateFlow_PromptTravel", clip=clip, schedule="0: a cat walking, 5: a cat, running, 19: a dog",
                       frames=20)[0]
    cond = travel[0][0]
    assert cond.shape[0] == 20 and not torch.equal(cond[0], cond[19])
    reference = sample(model, travel, prompts[1], frames=20, size=32)
    result = sample(windowed(model), travel, prompts[1], frames=20, size=32)
    torch.testing.assert_close(result, reference, rtol=1e-4, atol=1e-4)


def test_controlnet_per_frame_hints_under_windows(sd15, prompts):
    fixtures.ensure_controlnet(MODELS / "controlnet")
    control = call_node("ControlNetLoader", control_net_name=fixtures.CONTROLNET_FILE)[0]
    hints = torch.rand(20, 32, 32, 3, generator=torch.Generator().manual_seed(0))
    positive, negative = call_node("ControlNetApplyAdvanced", positive=prompts[0], negative=prompts[1],
                                   control_net=control, image=hints, strength=1.0, start_percent=0.0,
                                   end_percent=1.0)
    model = sd15[0]
    without = sample(model, *prompts, frames=20, size=32)
    reference = sample(model, positive, negative, frames=20, size=32)
    assert not torch.allclose(reference, without, atol=1e-3)
    result = sample(windowed(model, max_batched_windows=1), positive, negative, frames=20, size=32)
    torch.testing.assert_close(result, reference, rtol=1e-4, atol=1e-4)
    # Both windows in one call: the same maths in a batch of another size, which CPU kernels round differently
    # (up to ~5e-4 on a few of these random fp16 weights' large activations); a wrong hint slice differs by far more.
    batched = sample(windowed(model, max_batched_windows=2), positive, negative, frames=20, size=32)
    torch.testing.assert_close(batched, result, rtol=1e-3, atol=1e-3)
    assert positive[0][1]["control"].cond_hint_original.shape[0] == 20


def test_freenoise_reuses_first_window():
    noise = torch.randn(40, 4, 2, 2)
    out = freenoise.freenoise_shuffle(noise, length=16, stride=12, seed=1)
    assert torch.equal(out[:16], noise[:16])
    first = {tuple(f.flatten().tolist()) for f in noise[:16]}
    assert all(tuple(f.flatten().tolist()) in first for f in out)
    assert not torch.equal(out[16:28], noise[4:16])


def test_freenoise_option_samples(sd15, prompts):
    model = sd15[0]
    plain = sample(windowed(model), *prompts, frames=20, size=32)
    shuffled = sample(windowed(model, freenoise=True), *prompts, frames=20, size=32)
    torch.testing.assert_close(shuffled[:16], plain[:16], rtol=1e-4, atol=1e-4)
    assert not torch.allclose(shuffled[16:], plain[16:])
    # Frames are independent without a motion module: each refilled frame repeats one of the first window's.
    for frame in shuffled[16:]:
        assert any(torch.allclose(frame, plain[j], rtol=1e-4, atol=1e-4) for j in range(16))


def _run_v3(cls, **inputs):
    return cls.PREPARE_CLASS_CLONE({}).EXECUTE_NORMALIZED(**inputs).args


def test_windows_work_with_ksampler_advanced_and_sampler_custom_advanced(sd15, prompts):
    """The handler sits under calc_cond_batch, so every sampler entry point gets windows; each must fuse back to
    the unwindowed result (no motion module: frames are independent)."""
    import comfy_extras.nodes_custom_sampler as custom

    model, frames = sd15[0], 20
    latent = call_node("EmptyLatentImage", width=32, height=32, batch_size=frames)[0]

    def advanced(m):
        return call_node("KSamplerAdvanced", model=m, add_noise="enable", noise_seed=5, steps=2, cfg=2.0,
                         sampler_name="euler", scheduler="normal", positive=prompts[0], negative=prompts[1],
                         latent_image=latent, start_at_step=0, end_at_step=1, return_with_leftover_noise="disable")[0]

    def custom_advanced(m):
        noise = _run_v3(custom.RandomNoise, noise_seed=5)[0]
        guider = _run_v3(custom.CFGGuider, model=m, positive=prompts[0], negative=prompts[1], cfg=2.0)[0]
        sampler = _run_v3(custom.KSamplerSelect, sampler_name="dpmpp_2m")[0]
        sigmas = _run_v3(custom.BasicScheduler, model=m, scheduler="karras", steps=2, denoise=1.0)[0]
        return _run_v3(custom.SamplerCustomAdvanced, noise=noise, guider=guider, sampler=sampler, sigmas=sigmas,
                       latent_image=latent)[0]

    for run in (advanced, custom_advanced):
        reference = run(model)["samples"]
        result = run(windowed(model))["samples"]
        assert result.shape[0] == frames and torch.isfinite(result).all()
        torch.testing.assert_close(result, reference, rtol=1e-4, atol=1e-4)
