"""Motion modules inside a real (small) ComfyUI UNet: batching, v1 GroupNorm, scale, limits, LoRA, dtypes, SDXL.

The UNet is ComfyUI's own SD1.5 class with channels divided by 10 (motion_helpers), so each evaluation costs
milliseconds; the full-size checkpoint runs through KSampler in test_motion_host.py.
"""

from __future__ import annotations

import comfy.ldm.modules.attention
import comfy.ldm.modules.diffusionmodules.openaimodel as openaimodel
import comfy.model_management
import comfy.ops
import comfy.supported_models
import pytest
import torch
import torch.nn.functional as F
from conftest import pack_module
from motion_helpers import (SHRINK, SMALL_CONTEXT_DIM, layout_state_dict, run_unet, small_lora_state_dict,
                            small_motion)


loader = pack_module("motion.loader")
inject = pack_module("motion.inject")
apply = pack_module("nodes.motion_apply")
errors = pack_module("motion.errors")
model_classes = pack_module("motion.model")
lora = pack_module("motion.lora")
formats = pack_module("motion.formats")
context_options = pack_module("sampling.context_options")




def inputs(frames: int, videos: int = 1, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(videos * frames, 4, 8, 8, generator=gen)
    context = torch.randn(videos, 77, SMALL_CONTEXT_DIM, generator=gen).repeat_interleave(frames, 0)
    return x, context


def rel(a, b):
    return ((a - b).norm() / b.norm()).item()


def test_cond_and_uncond_are_never_mixed(small_model):
    """cond and uncond (and two videos) sharing one UNet call must give what each gives alone: if temporal
    attention ran over the whole batch, each half would see the other's frames and these would differ."""
    model = apply.apply_motion_module(small_model, small_motion("v2"), beta_schedule="sd")
    frames = 8
    x, context = inputs(frames, videos=2)
    both = run_unet(model, x, context, [0, 1])
    cond = run_unet(model, x[:frames], context[:frames], [0])
    uncond = run_unet(model, x[frames:], context[frames:], [1])
    assert rel(both[:frames], cond) < 1e-5
    assert rel(both[frames:], uncond) < 1e-5
    mixed = run_unet(model, x, context, [0])  # the same batch read as one 16-frame video
    assert rel(mixed[:frames], cond) > 1e-3


@pytest.mark.parametrize("frames", [1, 2])
def test_one_and_two_frame_batches(small_model, frames):
    model = apply.apply_motion_module(small_model, small_motion("v3"), beta_schedule="sd")
    x, context = inputs(frames, videos=2)
    out = run_unet(model, x, context, [0, 1])
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_motion_scale_zero_is_the_plain_unet_and_scale_changes_output(small_model):
    x, context = inputs(4)
    plain = run_unet(small_model, x, context, [0])
    off = run_unet(apply.apply_motion_module(small_model, small_motion("v2"), motion_scale=0.0, beta_schedule="sd"),
                   x, context, [0])
    one = run_unet(apply.apply_motion_module(small_model, small_motion("v2"), motion_scale=1.0, beta_schedule="sd"),
                   x, context, [0])
    assert torch.equal(off, plain)
    assert rel(one, plain) > 1e-3


def _groupnorm_io(model, x, context, cond_or_uncond):
    unet = model.model.diffusion_model
    norm = unet.input_blocks[1][0].in_layers[0]
    seen = []
    handle = norm.register_forward_hook(lambda m, args, out: seen.append((args[0].clone(), out.clone())))
    try:
        run_unet(model, x, context, cond_or_uncond)
    finally:
        handle.remove()
    return norm, seen[0]


def test_v1_groupnorm_takes_statistics_over_the_frames_of_each_video(small_model):
    frames = 4
    x, context = inputs(frames, videos=2)
    norm, (inp, out) = _groupnorm_io(apply.apply_motion_module(small_model, small_motion("v1"), beta_schedule="sd"),
                                     x, context, [0, 1])
    bf, c, h, w = inp.shape
    video = inp.view(2, frames, c, h, w).permute(0, 2, 1, 3, 4)  # (b, c, f, h, w): stats over (c, f, h, w) groups
    expected = F.group_norm(video, 32, norm.weight, norm.bias, norm.eps).permute(0, 2, 1, 3, 4).reshape(bf, c, h, w)
    assert torch.allclose(out, expected, atol=1e-5)
    per_frame = F.group_norm(inp, 32, norm.weight, norm.bias, norm.eps)
    assert not torch.allclose(out, per_frame, atol=1e-3)
    assert "forward" not in norm.__dict__, "eject must restore the UNet's own GroupNorm"

    norm, (inp, out) = _groupnorm_io(apply.apply_motion_module(small_model, small_motion("v3"), beta_schedule="sd"),
                                     x, context, [0, 1])
    assert torch.allclose(out, F.group_norm(inp, 32, norm.weight, norm.bias, norm.eps), atol=1e-5)


def test_inject_and_eject_leave_the_shared_unet_as_it_was(small_model):
    unet = small_model.model.diffusion_model
    before = [list(map(id, block)) for block in [*unet.input_blocks, unet.middle_block, *unet.output_blocks]]
    model = apply.apply_motion_module(small_model, small_motion("v2"), beta_schedule="animatediff")
    comfy.model_management.load_models_gpu([model])
    injected = [list(map(id, block)) for block in [*unet.input_blocks, unet.middle_block, *unet.output_blocks]]
    assert sum(map(len, injected)) - sum(map(len, before)) == 21
    assert isinstance(unet.output_blocks[2][-1], openaimodel.Upsample), "module goes before the upsampler"
    assert isinstance(unet.middle_block[2], model_classes.VanillaTemporalModule)
    comfy.model_management.unload_all_models()
    after = [list(map(id, block)) for block in [*unet.input_blocks, unet.middle_block, *unet.output_blocks]]
    assert after == before
    assert small_model.model.model_sampling is small_model.get_model_object("model_sampling")
    assert "forward_timestep_embed_patch" not in small_model.model_options["transformer_options"].get("patches", {})


def test_applying_while_another_clone_is_injected_places_modules_right(small_model):
    """A model left loaded by an earlier run is still injected when the next graph applies a module to it."""
    unet = small_model.model.diffusion_model
    before = [list(map(id, block)) for block in [*unet.input_blocks, unet.middle_block, *unet.output_blocks]]
    first = apply.apply_motion_module(small_model, small_motion("v2"), beta_schedule="animatediff")
    comfy.model_management.load_models_gpu([first])
    second_module = small_motion("v3")
    second = apply.apply_motion_module(small_model, second_module, beta_schedule="animatediff")
    comfy.model_management.load_models_gpu([second])
    layers = [m for block in [*unet.input_blocks, unet.middle_block, *unet.output_blocks] for m in block
              if isinstance(m, model_classes.VanillaTemporalModule)]
    ours = {id(m) for b in (*second_module.model.down_blocks, *second_module.model.up_blocks) for m in b.motion_modules}
    assert {id(m) for m in layers} == ours, "only the second clone's modules are in the UNet"
    assert isinstance(unet.output_blocks[2][-1], openaimodel.Upsample)
    x, context = inputs(4)
    assert torch.isfinite(run_unet(second, x, context, [0])).all()
    assert [list(map(id, block)) for block in [*unet.input_blocks, unet.middle_block, *unet.output_blocks]] == before


def test_frames_beyond_the_encoding_point_to_context_options(small_model):
    model = apply.apply_motion_module(small_model, small_motion("v1"), beta_schedule="sd")
    x, context = inputs(25)
    with pytest.raises(errors.MotionApplyError, match="25 frames exceed the motion module's positional encoding of "
                                                      "24 frames; connect context options with context_length ≤ 24"
                                                      ) as error:
        run_unet(model, x, context, [0])
    assert error.value.input == "context_options"
    too_long = context_options.ContextOptions(context_length=32)
    with pytest.raises(errors.MotionApplyError, match="context_length 32 .* 24"):
        apply.apply_motion_module(small_model, small_motion("v1"), context_options=too_long)


def test_sdxl_module_on_sd15_model_is_a_clear_error(small_model):
    sdxl = small_motion("sdxl")
    with pytest.raises(errors.MotionApplyError, match=r"small_sdxl.*SDXL.*does not fit the model SD15"):
        apply.apply_motion_module(small_model, sdxl)


def _meta_sdxl_unet():
    config = comfy.supported_models.SDXL({
        "model_channels": 320, "use_linear_in_transformer": True, "transformer_depth": [0, 0, 2, 2, 10, 10],
        "context_dim": 2048, "adm_in_channels": 2816, "num_classes": "sequential", "use_temporal_attention": False,
        "num_res_blocks": [2, 2, 2], "channel_mult": [1, 2, 4], "transformer_depth_middle": 10,
        "transformer_depth_output": [0, 0, 0, 2, 2, 2, 10, 10, 10], "in_channels": 4, "out_channels": 4,
        "use_spatial_transformer": True, "legacy": False, "num_heads": -1, "num_head_channels": 64,
        "use_temporal_resblock": False, "image_size": 32, "use_checkpoint": False,
    })
    return openaimodel.UNetModel(**config.unet_config, device="meta", operations=comfy.ops.disable_weight_init)


@pytest.mark.parametrize("fmt", ["sdxl", "hotshot"])
def test_sdxl_insertion_points_on_a_meta_sdxl_unet(fmt):
    unet = _meta_sdxl_unet()
    sd, found = formats.canonical_state_dict(layout_state_dict(fmt, meta=True), fmt)
    with torch.device("meta"):
        motion = loader.MotionModel(found.layout)
    points = inject.insertion_points(unet, motion, "SDXL", fmt)
    where = [(p.blocks, p.block, inject._insert_index(inject._container(unet, p), p.anchor), p.module.channels)
             for p in points]
    assert where == [
        ("input_blocks", 1, 1, 320), ("input_blocks", 2, 1, 320),
        ("input_blocks", 4, 2, 640), ("input_blocks", 5, 2, 640),
        ("input_blocks", 7, 2, 1280), ("input_blocks", 8, 2, 1280),
        ("output_blocks", 0, 2, 1280), ("output_blocks", 1, 2, 1280), ("output_blocks", 2, 2, 1280),
        ("output_blocks", 3, 2, 640), ("output_blocks", 4, 2, 640), ("output_blocks", 5, 2, 640),
        ("output_blocks", 6, 1, 320), ("output_blocks", 7, 1, 320), ("output_blocks", 8, 1, 320),
    ]
    assert isinstance(unet.output_blocks[2][2], openaimodel.Upsample)
    assert [p.module for p in points] == [m for b in (*motion.down_blocks, *motion.up_blocks) for m in b.motion_modules]
    with torch.device("meta"):
        sd15_motion = loader.MotionModel(formats.canonical_state_dict(layout_state_dict("v2", meta=True), "v2")[1].layout)
    with pytest.raises(errors.MotionApplyError, match="does not fit the model SDXL"):
        inject.insertion_points(unet, sd15_motion, "SDXL", "mm_sd_v15_v2")


def test_beta_schedules(small_model):
    def sigmas(model):
        return model.get_model_object("model_sampling").sigmas.double()

    def expected(betas):
        alphas_cumprod = torch.cumprod(1 - betas, 0)
        return ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5

    ad = apply.apply_motion_module(small_model, small_motion("v2"), beta_schedule="auto")
    assert torch.allclose(sigmas(ad), expected(torch.linspace(0.00085, 0.012, 1000, dtype=torch.float64)), rtol=1e-5)
    sdxl = apply.apply_motion_module(small_model, small_motion("v2"), beta_schedule="sdxl")
    scaled = torch.linspace(0.00085 ** 0.5, 0.020 ** 0.5, 1000, dtype=torch.float64) ** 2
    assert torch.allclose(sigmas(sdxl), expected(scaled), rtol=1e-5)
    sd = apply.apply_motion_module(small_model, small_motion("v2"), beta_schedule="sd")
    assert torch.equal(sigmas(sd), sigmas(small_model))
    lcm = apply.apply_motion_module(small_model, small_motion("animatelcm"), beta_schedule="auto")
    assert type(lcm.get_model_object("model_sampling")).__name__ == "ModelSamplingLCM"


def test_fp16_and_fp32_modules_agree():
    module32 = small_motion("v2").model.down_blocks[1].motion_modules[0]
    module16 = small_motion("v2", dtype=torch.float16).model.down_blocks[1].motion_modules[0]
    x = torch.randn(2 * 8, module32.channels, 8, 8, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ref = module32(x, 8)
        half = module16(x.half(), 8).float()
        cast = module16(x, 8)  # fp16 weights cast to fp32 activations, ComfyUI's manual_cast path
    assert cast.dtype == torch.float32
    assert rel(half, ref) < 5e-3
    assert rel(cast, ref) < 5e-3


def test_motion_lora_patches_the_clone_only_and_strength_zero_is_a_no_op(small_model):
    motion = small_motion("v2")
    lora_sd = small_lora_state_dict(SHRINK)
    fit = lora.fit_lora(motion, lora_sd, "pan.safetensors")
    assert lora.apply_fit(motion, fit, 0.0) is motion
    key = "down_blocks.1.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.1.to_out.0.weight"
    prefix = "down_blocks.1.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.1.processor."
    original = motion.model.state_dict()[key].clone()
    once = lora.apply_fit(motion, fit, 0.5)
    twice = lora.apply_fit(once, lora.fit_lora(once, lora_sd, "pan.safetensors"), 0.25)
    delta = lora_sd[prefix + "to_out_lora.up.weight"] @ lora_sd[prefix + "to_out_lora.down.weight"]
    twice.patcher.patch_model()
    try:
        assert torch.allclose(twice.model.state_dict()[key], original + 0.75 * delta, atol=1e-6)
    finally:
        twice.patcher.unpatch_model()
    assert torch.equal(motion.model.state_dict()[key], original)

    x, context = inputs(4)
    plain = run_unet(apply.apply_motion_module(small_model, motion, beta_schedule="sd"), x, context, [0])
    patched = run_unet(apply.apply_motion_module(small_model, once, beta_schedule="sd"), x, context, [0])
    again = run_unet(apply.apply_motion_module(small_model, motion, beta_schedule="sd"), x, context, [0])
    assert rel(patched, plain) > 1e-4
    assert torch.equal(again, plain)


def test_huge_attention_batches_are_split_without_changing_the_result(monkeypatch):
    """Batched context windows give a temporal layer 2**15 sequences at 512²; split calls must equal one call."""
    gen = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(37, 16, 64, generator=gen) for _ in range(3))
    whole = model_classes.temporal_attention(q, k, v, heads=8)
    calls = []
    original = comfy.ldm.modules.attention.optimized_attention

    def counting(*args, **kwargs):
        calls.append(args[0].shape[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(model_classes, "SPLIT_FROM", 8)
    monkeypatch.setattr(model_classes, "SPLIT_SIZE", 5)
    monkeypatch.setattr(comfy.ldm.modules.attention, "optimized_attention", counting)
    split = model_classes.temporal_attention(q, k, v, heads=8)
    assert calls == [5] * 7 + [2]
    assert torch.equal(split, whole)
