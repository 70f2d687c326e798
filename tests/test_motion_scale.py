"""Motion over time and space: per-frame schedules, per-block multipliers and masks, checked against the scale
applied by hand to each motion module's output inside a real (small) ComfyUI UNet; and attention_key_scale
against a module whose key weights were multiplied by hand."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from conftest import call_node, pack_module
from motion_helpers import SHRINK, SMALL_CONTEXT_DIM, layout_state_dict, run_unet, small_motion

loader = pack_module("motion.loader")
apply = pack_module("nodes.motion_apply")
inject = pack_module("motion.inject")
errors = pack_module("motion.errors")
model_classes = pack_module("motion.model")
scale_schedule = pack_module("motion.scale_schedule")




def schedule_node(schedule="0: 1.0", interpolation="linear", down=1.0, mid=1.0, up=1.0, **optional):
    return call_node("AnimateFlow_MotionScaleSchedule", schedule=schedule, interpolation=interpolation, down=down,
                     mid=mid, up=up, **optional)[0]


def test_schedule_text_forms():
    assert scale_schedule.parse_schedule("0: 1.0, 16: 0.5") == ((0, 1.0), (16, 0.5))
    assert scale_schedule.parse_schedule("16: 0.5\n0: 1") == ((0, 1.0), (16, 0.5))
    assert scale_schedule.parse_schedule("1.0; 0.8, 0.6") == ((0, 1.0), (1, 0.8), (2, 0.6))
    assert scale_schedule.parse_schedule("  ") == ((0, 1.0),)
    for bad, match in (("0: 1, 0.5", "mixes"), ("0: x", "not a number"), ("0: 1, 0: 2", "two keyframes"),
                       ("0: -1", "≥ 0"), ("0: nan", "finite")):
        with pytest.raises(scale_schedule.MotionScaleError, match=match):
            scale_schedule.parse_schedule(bad)


@pytest.mark.parametrize("interpolation", ["linear", "ease_in_out", "hold"])
def test_interpolation_between_keyframes(interpolation):
    keys = ((2, 1.0), (6, 0.0), (10, 2.0))
    got = scale_schedule.interpolate(keys, interpolation, torch.arange(14))
    for frame in range(14):
        if frame <= 2:
            expected = 1.0
        elif frame >= 10:
            expected = 2.0
        else:
            (f0, v0), (f1, v1) = (keys[0], keys[1]) if frame < 6 else (keys[1], keys[2])
            t = (frame - f0) / (f1 - f0)
            if interpolation == "ease_in_out":
                t = (1 - math.cos(math.pi * t)) / 2
            elif interpolation == "hold":
                t = 0.0
            expected = v0 + (v1 - v0) * t
        assert got[frame].item() == pytest.approx(expected, abs=1e-9), frame


def test_frame_scales_list_input_replaces_the_schedule():
    out = schedule_node(schedule="0: 5", frame_scales=[0.5, 0.25, 1.0])
    assert out.keyframes == ((0, 0.5), (1, 0.25), (2, 1.0))
    assert out.frame_scales(torch.arange(5)).tolist() == [0.5, 0.25, 1.0, 1.0, 1.0]
    assert schedule_node(frame_scales=torch.tensor([0.5, 0.0])).keyframes == ((0, 0.5), (1, 0.0))


def _block_of(motion, module) -> str:
    if motion.model.mid_block is not None and any(m is module for m in motion.model.mid_block.motion_modules):
        return "mid"
    return "down" if any(m is module for b in motion.model.down_blocks for m in b.motion_modules) else "up"


def _calls(model, motion, x, context, options_extra=None):
    """Run the patched UNet once, recording (module, input, frames, scale, output) of every motion module call."""
    seen = []
    handles = [m.register_forward_hook(lambda mod, args, out: seen.append((mod, args[0].clone(), args[1], args[2],
                                                                            out.clone())))
               for b in (*motion.model.down_blocks, *motion.model.up_blocks,
                         *([motion.model.mid_block] if motion.model.mid_block is not None else []))
               for m in b.motion_modules]
    try:
        if options_extra:
            import comfy.model_management

            comfy.model_management.load_models_gpu([model] + model.get_nested_additional_models())
            options = {"cond_or_uncond": [0, 1], "wrappers": model.wrappers,
                       "patches": model.model_options["transformer_options"].get("patches", {}), **options_extra}
            try:
                with torch.no_grad():
                    model.model.diffusion_model(x, torch.full((x.shape[0],), 500.0), context,
                                                transformer_options=options)
            finally:
                comfy.model_management.unload_all_models()
        else:
            run_unet(model, x, context, [0, 1])
    finally:
        for h in handles:
            h.remove()
    return seen


def _expected_scale(frames_idx, block, h, w, videos, motion_scale, keys, interpolation, blocks, mask):
    per_frame = scale_schedule.interpolate(keys, interpolation, torch.tensor(frames_idx)).float()
    scale = (per_frame * motion_scale * blocks[block]).view(-1, 1, 1, 1)
    if mask is not None:
        m = mask[torch.tensor(frames_idx).clamp(max=mask.shape[0] - 1)][:, None]
        mode = "area" if m.shape[-2] >= h and m.shape[-1] >= w else "bilinear"
        kwargs = {} if mode == "area" else {"align_corners": False}
        scale = scale * F.interpolate(m, size=(h, w), mode=mode, **kwargs)
    return scale.repeat(videos, 1, 1, 1)


@pytest.mark.parametrize("with_mask", [False, True])
@pytest.mark.parametrize("window", [None, [3, 4, 5, 6, 7, 0]])
def test_schedule_blocks_and_mask_equal_the_scale_applied_by_hand(small_model, with_mask, window):
    """Every module call's output is input + scale · (its unscaled output − input), with the scale computed here
    from the keyframes, the block multipliers and the mask resized to the block's resolution; inside a context
    window the schedule follows the window's video frame numbers."""
    frames, videos = 6, 2
    keys, interpolation, blocks = ((0, 1.0), (3, 0.2), (7, 1.5)), "ease_in_out", {"down": 0.5, "mid": 2.0, "up": 1.25}
    mask = None
    if with_mask:
        yy, xx = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
        mask = torch.stack([(xx * (i + 1) / 8 + yy * 0.3).clamp(0, 1) for i in range(4)])  # 4 masks, last repeats
    schedule = schedule_node(schedule="0: 1.0, 3: 0.2, 7: 1.5", interpolation=interpolation, **blocks,
                             **({"mask": mask} if with_mask else {}))
    motion = small_motion("v2")
    model = apply.apply_motion_module(small_model, motion, motion_scale=0.8, beta_schedule="sd", scale_schedule=schedule)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(videos * frames, 4, 8, 8, generator=gen)
    context = torch.randn(videos, 77, SMALL_CONTEXT_DIM, generator=gen).repeat_interleave(frames, 0)
    extra = None
    if window is not None:  # what ComfyUI's window handler puts in transformer_options: a window with index_list
        extra = {"context_window": SimpleNamespace(index_list=window)}
    calls = _calls(model, motion, x, context, extra)
    assert len(calls) == 21
    idx = window if window is not None else list(range(frames))
    blocks_seen = set()
    for module, inp, f, scale, out in calls:
        assert f == frames and isinstance(scale, torch.Tensor)
        block = _block_of(motion, module)
        blocks_seen.add(block)
        expected = _expected_scale(idx, block, inp.shape[-2], inp.shape[-1], videos, 0.8, keys, interpolation,
                                   blocks, mask)
        with torch.no_grad():
            delta = module(inp, f, 1.0) - inp
        torch.testing.assert_close(out, inp + expected * delta, rtol=1e-5, atol=1e-5)
    assert blocks_seen == {"down", "mid", "up"}


def test_constant_schedule_stays_a_float_and_zero_everywhere_is_the_plain_unet(small_model):
    motion = small_motion("v2")
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(8, 4, 8, 8, generator=gen)
    context = torch.randn(2, 77, SMALL_CONTEXT_DIM, generator=gen).repeat_interleave(4, 0)
    model = apply.apply_motion_module(small_model, motion, motion_scale=2.0, beta_schedule="sd",
                                      scale_schedule=schedule_node(schedule="0: 0.5", down=1.0, mid=3.0, up=0.0))
    for module, inp, f, scale, out in _calls(model, motion, x, context):
        assert isinstance(scale, float)
        assert scale == {"down": 1.0, "mid": 3.0, "up": 0.0}[_block_of(motion, module)]
    plain = run_unet(small_model, x, context, [0, 1])
    off = apply.apply_motion_module(small_model, motion, beta_schedule="sd", scale_schedule=schedule_node(schedule="0: 0"))
    assert torch.equal(run_unet(off, x, context, [0, 1]), plain)


def test_attention_key_scale_equals_key_weights_scaled_by_hand(small_model):
    """The leading pack's "scale" multiplies k = to_k(x); with no bias that is to_k's weight times the scale."""
    sd = layout_state_dict("v2", shrink=SHRINK)
    by_hand = {k: (v * 1.7 if k.endswith(".to_k.weight") else v) for k, v in sd.items()}
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(8, 4, 8, 8, generator=gen)
    context = torch.randn(2, 77, SMALL_CONTEXT_DIM, generator=gen).repeat_interleave(4, 0)
    motion = small_motion("v2", sd)
    scaled = run_unet(apply.apply_motion_module(small_model, motion, beta_schedule="sd", attention_key_scale=1.7),
                      x, context, [0, 1])
    reference = run_unet(apply.apply_motion_module(small_model, small_motion("v2", by_hand), beta_schedule="sd"),
                         x, context, [0, 1])
    torch.testing.assert_close(scaled, reference, rtol=1e-5, atol=1e-5)
    plain = run_unet(apply.apply_motion_module(small_model, motion, beta_schedule="sd"), x, context, [0, 1])
    assert ((scaled - plain).norm() / plain.norm()) > 1e-4
    key = "down_blocks.0.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.0.to_k.weight"
    assert torch.equal(motion.model.state_dict()[key], sd[key]), "the shared module keeps its own weights"


def test_bad_values_are_clear_errors(small_model):
    motion = small_motion("v3")
    with pytest.raises(errors.MotionApplyError, match="attention_key_scale"):
        apply.apply_motion_module(small_model, motion, attention_key_scale=float("inf"))
    with pytest.raises(errors.MotionApplyError, match="motion_scale_schedule got float"):
        apply.apply_motion_module(small_model, motion, scale_schedule=0.5)
    with pytest.raises(scale_schedule.MotionScaleError, match="mask"):
        schedule_node(mask=torch.full((1, 8, 8), float("nan")))


def _forwarded(model):
    """What a patched model's motion layers run with: their scales and the (key-scaled) motion module patcher."""
    patches = model.model_options["transformer_options"]["patches"]["forward_timestep_embed_patch"]
    scales = next(handler.args[0] for owner, handler in patches if owner is model_classes.VanillaTemporalModule)
    (motion_patcher,) = model.get_additional_models_with_key(inject.KEY)
    return scales, motion_patcher


def test_apply_node_takes_the_new_inputs_and_old_inputs_alone(small_model):
    """Saved workflows without the new inputs still run, as motion_scale alone; given, the node passes them on to
    what the motion layers run with (other tests check those against the scales applied by hand)."""
    motion = small_motion("v3")
    old = call_node("AnimateFlow_ApplyMotionModule", model=small_model, motion_module=motion, motion_scale=1.0,
                    beta_schedule="sd")[0]
    scales, patcher = _forwarded(old)
    assert scales.motion_scale == 1.0 and scales.schedule is None and patcher is motion.patcher
    schedule = schedule_node(schedule="0: 1, 8: 0")
    new = call_node("AnimateFlow_ApplyMotionModule", model=small_model, motion_module=motion, motion_scale=0.5,
                    beta_schedule="sd", motion_scale_schedule=schedule, attention_key_scale=1.2)[0]
    scales, patcher = _forwarded(new)
    assert scales.motion_scale == 0.5 and scales.schedule is schedule
    keys = {k for k in motion.model.state_dict() if k.endswith(".to_k.weight")}
    assert set(patcher.patches) == keys and all(p[0][2] == 1.2 for p in patcher.patches.values())
