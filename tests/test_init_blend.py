"""Latent Init Blend: per-frame alphas against the original's formula, exact first frame, last-frame variant,
seeded noise, batches, and an img2vid run through ComfyUI's own VAEEncode and KSampler."""

from __future__ import annotations

import pytest
import torch
from conftest import call_node, pack_module

init_latents = pack_module("sampling.init_latents")
NODE = "AnimateFlow_LatentInitBlend"


def reference_weights(frames, power, scale, last=None):
    """sd-webui-animatediff v1.x `AnimateDiffI2VLatent.randomize` (scripts/animatediff_latent.py), in plain Python.

    The original, quoted (params.video_length is `frames`; the tensors are float32 [frames, 1, 1, 1]):

        init_alpha = [1 - pow(i, params.latent_power) / params.latent_scale for i in range(params.video_length)]
        init_alpha[init_alpha < 0] = 0
        last_alpha = [1 - pow(i, params.latent_power_last) / params.latent_scale_last
                      for i in range(params.video_length)]
        last_alpha.reverse()
        last_alpha[last_alpha < 0] = 0
        sum_alpha = init_alpha + last_alpha
        mask_alpha = sum_alpha > 1
        scaling_factor = 1 / sum_alpha[mask_alpha]
        init_alpha[mask_alpha] *= scaling_factor
        last_alpha[mask_alpha] *= scaling_factor
        init_alpha[0] = 1
        init_alpha[-1] = 0
        last_alpha[0] = 0
        last_alpha[-1] = 1
        p.init_latent = p.init_latent * init_alpha + last_latent * last_alpha + noise * (1 - init_alpha - last_alpha)

    and without a last frame `p.init_latent * init_alpha + noise * (1 - init_alpha)`.
    """
    init = [max(0.0, 1 - pow(i, power) / scale) for i in range(frames)]
    if last is None:
        return init, None
    last_alpha = [max(0.0, 1 - pow(i, last[0]) / last[1]) for i in range(frames)]
    last_alpha.reverse()
    for i in range(frames):
        total = init[i] + last_alpha[i]
        if total > 1:
            init[i], last_alpha[i] = init[i] * (1 / total), last_alpha[i] * (1 / total)
    init[0], init[-1] = 1.0, 0.0
    last_alpha[0], last_alpha[-1] = 0.0, 1.0
    return init, last_alpha


@pytest.mark.parametrize("power,scale", [(1.0, 32.0), (2.0, 20.0), (0.5, 3.0), (1.3, 4.0)])
def test_alphas_follow_formula(power, scale):
    got = init_latents.frame_alphas(24, power, scale)
    want = torch.tensor(reference_weights(24, power, scale)[0])
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    assert got[0] == 1 and got.min() >= 0 and got.max() <= 1


def test_blend_matches_equation_and_keeps_frame0_exactly():
    init = torch.randn(1, 4, 8, 8)
    out = init_latents.blend_init_latents(init, 8, 1.0, 4.0, seed=7, noise_std=2.0)
    assert out.shape == (8, 4, 8, 8)
    assert torch.equal(out[0], init[0])
    noise = torch.randn((8, 4, 8, 8), generator=torch.Generator().manual_seed(7)) * 2.0
    alpha = torch.tensor(reference_weights(8, 1.0, 4.0)[0]).view(8, 1, 1, 1)
    torch.testing.assert_close(out, init * alpha + noise * (1 - alpha))
    assert torch.equal(out[4:], noise[4:])


def test_last_frame_variant_blends_from_both_ends():
    init, last = torch.randn(1, 4, 6, 6), torch.randn(1, 4, 6, 6)
    out = init_latents.blend_init_latents(init, 8, 1.0, 4.0, 3, last_latent=last, latent_power_last=2.0,
                                          latent_scale_last=9.0)
    init_w, last_w = (torch.tensor(w).view(8, 1, 1, 1) for w in reference_weights(8, 1.0, 4.0, (2.0, 9.0)))
    noise = torch.randn((8, 4, 6, 6), generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(out, init * init_w + last * last_w + noise * (1 - init_w - last_w))
    assert torch.equal(out[0], init[0]) and torch.equal(out[-1], last[0])


@pytest.mark.parametrize("frames", [1, 2, 3, 16, 40])
@pytest.mark.parametrize("power,scale,power_last,scale_last",
                         [(1.0, 32.0, 1.0, 32.0), (2.0, 20.0, 0.5, 3.0), (0.0, 5.0, 1.3, 4.0), (1.0, 1.0, 1.0, 1.0)])
def test_endpoints_pinned_as_the_original(frames, power, scale, power_last, scale_last):
    """With the defaults over 16 frames the unpinned blend made frame 0 65% first / 35% last image."""
    init_w, last_w = init_latents.blend_weights(frames, power, scale, (power_last, scale_last))
    want_init, want_last = reference_weights(frames, power, scale, (power_last, scale_last))
    torch.testing.assert_close(init_w, torch.tensor(want_init), rtol=0, atol=1e-6)
    torch.testing.assert_close(last_w, torch.tensor(want_last), rtol=0, atol=1e-6)
    assert torch.all(init_w + last_w <= 1 + 1e-6) and init_w.min() >= 0 and last_w.min() >= 0
    init, last = torch.randn(1, 4, 4, 4), torch.randn(1, 4, 4, 4)
    out = init_latents.blend_init_latents(init, frames, power, scale, 0, last_latent=last,
                                          latent_power_last=power_last, latent_scale_last=scale_last)
    assert torch.equal(out[-1], last[0]), "the last frame is exactly the last latent"
    if frames > 1:
        assert torch.equal(out[0], init[0]), "frame 0 is exactly the first latent"


def test_seeded_determinism():
    init = torch.randn(1, 4, 8, 8)
    a, b = (init_latents.blend_init_latents(init, 6, 1.0, 8.0, seed=11) for _ in range(2))
    assert torch.equal(a, b)
    assert not torch.equal(a, init_latents.blend_init_latents(init, 6, 1.0, 8.0, seed=12))


def test_batch_init_and_frames_zero():
    init = torch.randn(5, 4, 8, 8)
    out = init_latents.blend_init_latents(init, 0, 1.0, 32.0, seed=1)
    assert out.shape[0] == 5
    assert torch.equal(out[0], init[0])
    alpha = init_latents.frame_alphas(5, 1.0, 32.0).view(5, 1, 1, 1)
    noise = torch.randn(init.shape, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(out, init * alpha + noise * (1 - alpha))
    with pytest.raises(ValueError, match="batch of 5 latents but 8 frames"):
        init_latents.blend_init_latents(init, 8, 1.0, 32.0, seed=1)


def test_node_output_and_clear_errors():
    init = {"samples": torch.randn(1, 4, 8, 8, dtype=torch.float16)}
    (latent,) = call_node(NODE, init_latent=init, frames=4, latent_power=1.0, latent_scale=32.0, seed=5)
    assert latent["samples"].shape == (4, 4, 8, 8) and latent["samples"].dtype == torch.float16
    assert torch.equal(latent["samples"][0], init["samples"][0])
    with pytest.raises(ValueError, match="Latent Init Blend: latent_scale is 0"):
        call_node(NODE, init_latent=init, frames=4, latent_power=1.0, latent_scale=0.0, seed=5)
    with pytest.raises(ValueError, match="latent_scale_last is 0"):
        call_node(NODE, init_latent=init, frames=4, latent_power=1.0, latent_scale=32.0, seed=5,
                  last_latent=init, latent_scale_last=0.0)
    with pytest.raises(ValueError, match="Latent Init Blend: .*same size"):
        call_node(NODE, init_latent=init, frames=4, latent_power=1.0, latent_scale=32.0, seed=5,
                  last_latent={"samples": torch.zeros(1, 4, 16, 16)})


def test_img2vid_through_ksampler(sd15):
    model, clip, vae = sd15
    image = torch.linspace(0, 1, 64 * 64 * 3).view(1, 64, 64, 3)
    (encoded,) = call_node("VAEEncode", pixels=image, vae=vae)
    (latent,) = call_node(NODE, init_latent=encoded, frames=8, latent_power=1.0, latent_scale=4.0, seed=3,
                          model=model)
    assert latent["samples"].shape == (8, 4, 8, 8)
    assert torch.equal(latent["samples"][0], encoded["samples"][0])
    tail_std = latent["samples"][4:].std().item()
    assert 0.5 / 0.18215 < tail_std < 2 / 0.18215, "pure-noise frames have unit std in the model's latent space"
    (positive,) = call_node("CLIPTextEncode", clip=clip, text="a cat")
    (negative,) = call_node("CLIPTextEncode", clip=clip, text="")
    (sampled,) = call_node("KSampler", model=model, seed=1, steps=1, cfg=1.0, sampler_name="euler",
                           scheduler="normal", positive=positive, negative=negative, latent_image=latent,
                           denoise=0.6)
    assert sampled["samples"].shape == (8, 4, 8, 8)
    assert torch.isfinite(sampled["samples"]).all()
