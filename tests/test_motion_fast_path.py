"""The CUDA fast path (motion/fast_path.py) on CPU: it is never selected here, and its maths is the plain path's.

CI has no GPU, so what can be proven here is that selection falls back to the plain path (ComfyUI's attention) on
CPU and that the function the fast path compiles computes what model.py computes; the compiled CUDA run is checked
against the plain path by benchmarks/run.py on the device.
"""

from __future__ import annotations

import logging

import pytest
import torch
from conftest import pack_module
from motion_helpers import layout_state_dict, run_unet, small_sd15_model

loader = pack_module("motion.loader")
inject = pack_module("motion.inject")
apply = pack_module("motion.apply")
errors = pack_module("motion.errors")
fast_path = pack_module("motion.fast_path")


def small_motion():
    return loader.build_motion_module(layout_state_dict("v2", shrink=10), "small_v2", dtype=torch.float32)


def rel(a, b):
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_cpu_never_selects_the_fast_path(dtype, caplog):
    x = torch.randn(16, 32, 8, 8, dtype=dtype)
    with caplog.at_level(logging.INFO, logger=fast_path.__name__):
        assert not fast_path.use_fast_path("auto", x, 8)
        assert not fast_path.use_fast_path("auto", x, 8)
        assert not fast_path.use_fast_path("off", x, 8)
    said = [r.getMessage() for r in caplog.records if "plain path" in r.getMessage()]
    assert len(said) <= 1, "the fallback is said once, not per call"
    assert "not CUDA" in fast_path.unavailable_reason(x, 8)


def test_fast_maths_matches_the_plain_module():
    """Every module of a (small) v2 checkpoint: the compiled function's maths, run eagerly in float32 on CPU, against
    model.py's forward with ComfyUI's attention; two videos per batch, a scale that is not 1, fewer frames than the
    encoding."""
    motion = small_motion().model
    modules = [m for blocks in (motion.down_blocks, [motion.mid_block], motion.up_blocks) for b in blocks
               for m in b.motion_modules]
    gen = torch.Generator().manual_seed(3)
    frames = 6
    for module in modules:
        x = torch.randn(2 * frames, module.channels, 4, 5, generator=gen)
        transformer = module.temporal_transformer
        heads = transformer.transformer_blocks[0].attention_blocks[0].heads
        with torch.no_grad():
            plain = module(x, frames, 0.7)
            fast = fast_path.transformer_math(x, frames, 0.7, heads, fast_path.gather_params(transformer, x))
        assert fast.shape == plain.shape and torch.isfinite(fast).all()
        assert rel(fast - x, plain - x) < 1e-5, module.channels


def test_unet_on_cpu_with_fast_path_auto_is_the_plain_path():
    base = small_sd15_model()
    frames = 8
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(frames, 4, 8, 8, generator=gen)
    context = torch.randn(1, 77, 32, generator=gen).repeat_interleave(frames, 0)
    motion = small_motion()
    auto = run_unet(apply.apply_motion_module(base, motion, beta_schedule="sd"), x, context, [0])
    off = run_unet(apply.apply_motion_module(base, motion, beta_schedule="sd", fast_mode="off"), x, context, [0])
    assert torch.isfinite(auto).all()
    assert torch.equal(auto, off)


def test_unknown_fast_mode_names_the_input():
    with pytest.raises(errors.MotionApplyError, match="fast_path"):
        apply.apply_motion_module(small_sd15_model(), small_motion(), fast_mode="fast")
