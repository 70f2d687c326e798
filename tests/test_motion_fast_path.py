"""The CUDA fast path (motion/fast_path.py) on CPU: it is never selected here, its maths is the plain path's, and
its per-model bookkeeping (background compile, per-shape fallback, said once) holds.

CI has no GPU, so what can be proven here is that selection falls back to the plain path (ComfyUI's attention) on
CPU, that the function the fast path compiles computes what model.py computes, and, with a stand-in compiler and
CPU allowed, how a FastPath switches, fails and reports per shape; the compiled CUDA run is checked against an fp32
reference by benchmarks/run.py on the device.
"""

from __future__ import annotations

import copy
import logging
import threading

import comfy.patcher_extension
import pytest
import torch
from conftest import pack_module
from motion_helpers import run_unet, small_motion, small_sd15_model

loader = pack_module("motion.loader")
inject = pack_module("motion.inject")
apply = pack_module("nodes.motion_apply")
errors = pack_module("motion.errors")
fast_path = pack_module("motion.fast_path")
fast_math = pack_module("motion.fast_math")
compile_worker = pack_module("motion.compile_worker")


def rel(a, b):
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_cpu_never_selects_the_fast_path(dtype, caplog):
    x = torch.randn(16, 32, 8, 8, dtype=dtype)
    auto, off = fast_path.FastPath("auto"), fast_path.FastPath("off")
    with caplog.at_level(logging.INFO, logger=fast_path.__name__):
        assert not auto.use(x, 8)
        assert not auto.use(x, 8)
        assert not off.use(x, 8)
    said = [r.getMessage() for r in caplog.records if "plain path" in r.getMessage()]
    assert len(said) == 1, "the fallback is said once per model, not per call"
    assert "not CUDA" in auto.unavailable_reason(x, 8)


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
            params = fast_math.gather_params(transformer, x)
            fast = fast_math.transformer_math(x, frames, 0.7, heads, params)
            per_frame = fast_math.transformer_math(x, frames, torch.full((2 * frames, 1, 1, 1), 0.7), heads, params)
        assert fast.shape == plain.shape and torch.isfinite(fast).all()
        assert rel(fast - x, plain - x) < 1e-5, module.channels
        assert rel(per_frame - x, plain - x) < 1e-5, module.channels


def test_per_frame_scale_scales_each_frame():
    """A tensor scale broadcasts over (b·f, C, h, w) as Motion Scale Schedule makes it (the compiled graph takes the
    scale as a tensor, so a new value never means a new graph)."""
    module = small_motion().model.down_blocks[0].motion_modules[0]
    frames = 4
    x = torch.randn(2 * frames, module.channels, 3, 3, generator=torch.Generator().manual_seed(1))
    transformer = module.temporal_transformer
    heads = transformer.transformer_blocks[0].attention_blocks[0].heads
    scales = torch.tensor([0.0, 0.5, 1.0, 2.0])
    with torch.no_grad():
        params = fast_math.gather_params(transformer, x)
        delta = fast_math.transformer_math(x, frames, 1.0, heads, params) - x
        scaled = fast_math.transformer_math(x, frames, scales.repeat(2).view(-1, 1, 1, 1), heads, params) - x
    expected = delta.view(2, frames, -1) * scales.view(1, frames, 1)
    assert torch.allclose(scaled.view(2, frames, -1), expected, atol=1e-6)


def test_a_tensor_scale_reaches_the_compiled_graph_and_matches_the_plain_path():
    """Per-frame and per-region scales (Motion Scale Schedule) go into the compiled graph as an input; a scale of
    another shape is another graph, a new value of the same shape is not."""
    layer = bf16_layer()
    compiler = StandInCompiler()
    fast = cpu_fast_path(compiler)
    frames = 4
    gen = torch.Generator().manual_seed(8)
    x = torch.randn(2 * frames, layer.channels, 3, 4, generator=gen).bfloat16()
    per_frame = torch.rand(2 * frames, 1, 1, 1, generator=gen).bfloat16()
    per_region = torch.rand(2 * frames, 1, 3, 4, generator=gen).bfloat16()
    with torch.no_grad():
        for scale in (per_frame, per_region):
            fast.forward(layer, x, frames, scale)
            assert fast.wait(timeout=60)
            result = fast.forward(layer, x, frames, scale)
            plain = layer(x, frames, scale)
            assert rel((result - x).float(), (plain - x).float()) < 3e-2
        fast.forward(layer, x, frames, per_frame * 0.5)
    assert len(compiler.compiled) == 2 and fast.summary() == {"ready": 2, "pending": 0, "failed": 0}


class StandInCompiler:
    """Compiles nothing: returns the traced function itself, counting calls, optionally failing for some shapes or
    holding every compile until released."""

    def __init__(self, fail_width: int | None = None, hold: bool = False, fail_at_run: bool = False):
        self.fail_width, self.fail_at_run = fail_width, fail_at_run
        self.release = threading.Event()
        if not hold:
            self.release.set()
        self.compiled, self.runs = [], 0

    def __call__(self, fn, inputs):
        self.release.wait(timeout=60)
        if inputs[0].shape[-1] == self.fail_width:
            raise RuntimeError("stand-in compile failure")
        self.compiled.append(tuple(inputs[0].shape))

        def run(*args):
            self.runs += 1
            if self.fail_at_run and self.runs > 1:  # the compile's own trial run passes, the first real call fails
                raise AssertionError("stand-in layout mismatch")
            return fn(*args)

        return run


def cpu_fast_path(compiler) -> object:
    return fast_path.FastPath("auto", compiler=compiler, device_types=("cpu",))


def bf16_layer():
    return small_motion().model.down_blocks[0].motion_modules[0].to(torch.bfloat16)


def test_a_failed_shape_falls_back_alone_and_is_said_once(caplog):
    layer = bf16_layer()
    compiler = StandInCompiler(fail_width=5)
    fast = cpu_fast_path(compiler)
    gen = torch.Generator().manual_seed(2)
    bad = torch.randn(8, layer.channels, 3, 5, generator=gen).bfloat16()
    good = torch.randn(8, layer.channels, 3, 4, generator=gen).bfloat16()
    with torch.no_grad(), caplog.at_level(logging.INFO, logger=fast_path.__name__):
        for _ in range(2):
            assert fast.use(bad, 4) and fast.use(good, 4)
            fast.forward(layer, bad, 4, 0.8)
            fast.forward(layer, good, 4, 0.8)
            assert fast.wait(timeout=60)
        assert fast.summary() == {"ready": 1, "pending": 0, "failed": 1}
        assert compiler.compiled == [(8, layer.channels, 3, 4)], "the failed shape is not compiled again"
        runs = compiler.runs
        assert torch.equal(fast.forward(layer, bad, 4, 0.8), layer(bad, 4, 0.8)), "the failed shape: plain path"
        assert compiler.runs == runs
        fast.forward(layer, good, 4, 0.8)
        assert compiler.runs == runs + 1, "the other shape keeps its compiled graph"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "(8, 32, 3, 5)" in warnings[0] and "did not compile" in warnings[0], warnings


def test_the_plain_path_runs_until_the_shape_is_compiled():
    layer = bf16_layer()
    compiler = StandInCompiler(hold=True)
    fast = cpu_fast_path(compiler)
    x = torch.randn(8, layer.channels, 3, 4, generator=torch.Generator().manual_seed(4)).bfloat16()
    with torch.no_grad():
        plain = layer(x, 4, 1.0)
        assert torch.equal(fast.forward(layer, x, 4), plain)
        assert torch.equal(fast.forward(layer, x, 4), plain), "still compiling: still the plain path, no wait"
        assert fast.summary()["pending"] == 1 and compiler.runs == 0
        compiler.release.set()
        assert fast.wait(timeout=60)
        runs = compiler.runs
        switched = fast.forward(layer, x, 4)
    assert compiler.runs == runs + 1
    assert rel((switched - x).float(), (plain - x).float()) < 3e-2  # bf16 rounding differs between the two maths


def test_a_compiled_graph_that_fails_when_called_falls_back_for_its_shape(caplog):
    layer = bf16_layer()
    fast = cpu_fast_path(StandInCompiler(fail_at_run=True))
    x = torch.randn(8, layer.channels, 3, 4, generator=torch.Generator().manual_seed(5)).bfloat16()
    with torch.no_grad(), caplog.at_level(logging.WARNING, logger=fast_path.__name__):
        fast.forward(layer, x, 4)
        assert fast.wait(timeout=60)
        for _ in range(3):
            assert torch.equal(fast.forward(layer, x, 4), layer(x, 4, 1.0))
    assert fast.summary() == {"ready": 0, "pending": 0, "failed": 1}
    assert len([r for r in caplog.records if "compiled graph failed" in r.getMessage()]) == 1


def test_compiles_wait_while_one_of_our_models_samples(monkeypatch):
    """A compile beside sampling takes the interpreter from the sampling thread (measured: a 3.2 s render took 7.3 s),
    so the worker pauses while a sampling runs, and for no longer than PAUSE_LIMIT_S of it."""
    layer = bf16_layer()
    compiler = StandInCompiler()
    fast = cpu_fast_path(compiler)
    x = torch.randn(8, layer.channels, 3, 4, generator=torch.Generator().manual_seed(6)).bfloat16()
    with torch.no_grad():
        with compile_worker.SAMPLING.sampling():
            fast.forward(layer, x, 4)
            assert not fast.wait(timeout=1.0), "the compile must not run while the model samples"
            assert compiler.compiled == [] and fast.summary()["pending"] == 1
        assert fast.wait(timeout=60) and compiler.compiled == [(8, layer.channels, 3, 4)]

        monkeypatch.setattr(compile_worker, "PAUSE_LIMIT_S", 0.5)
        other = torch.randn(8, layer.channels, 3, 5, generator=torch.Generator().manual_seed(7)).bfloat16()
        with compile_worker.SAMPLING.sampling():
            fast.forward(layer, other, 4)
            assert fast.wait(timeout=60), "a sampling longer than PAUSE_LIMIT_S lets the compile run"
    assert len(compiler.compiled) == 2


def test_the_sampling_wrapper_marks_sampling_and_is_registered():
    seen = []

    def executor(*args, **kwargs):
        seen.append(compile_worker.SAMPLING._hold_back() > 0)
        return "sampled"

    assert compile_worker.while_sampling(executor, 1, k=2) == "sampled" and seen == [True]
    assert compile_worker.SAMPLING._hold_back() == 0
    patched = apply.apply_motion_module(small_sd15_model(), small_motion(), beta_schedule="sd")
    wrappers = patched.wrappers[comfy.patcher_extension.WrappersMP.OUTER_SAMPLE][inject.KEY]
    assert compile_worker.while_sampling in wrappers


def test_each_applied_model_has_its_own_fast_path_shared_by_its_clones():
    base, motion = small_sd15_model(), small_motion()
    first = apply.apply_motion_module(base, motion, beta_schedule="sd")
    second = apply.apply_motion_module(base, motion, beta_schedule="sd", fast_mode="off")
    fast = inject.fast_path_of(first)
    assert isinstance(fast, fast_path.FastPath) and fast.mode == "auto"
    assert inject.fast_path_of(second).mode == "off" and inject.fast_path_of(second) is not fast
    assert inject.fast_path_of(first.clone()) is fast
    assert copy.deepcopy(fast) is fast
    assert inject.fast_path_of(base) is None


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


def test_a_model_moved_off_the_device_before_its_compile_is_asked_again_not_failed(caplog, monkeypatch):
    """ComfyUI offloads a model between prompts; a compile that then finds the weights elsewhere (an H100 run:
    "found two different devices cuda:0, cpu") must not mark the shape failed for the rest of the session."""
    x = torch.zeros(2, 3)
    assert fast_path._moved([torch.zeros(1, device="meta")], x) and not fast_path._moved([torch.zeros(1)], x)
    layer = bf16_layer()
    compiler = StandInCompiler()
    fast = cpu_fast_path(compiler)
    x = torch.randn(8, layer.channels, 3, 4, generator=torch.Generator().manual_seed(6)).bfloat16()
    away = [True]  # the first compile finds the weights moved (a CPU-only machine cannot move them for real)
    real = fast_path._moved
    monkeypatch.setattr(fast_path, "_moved", lambda tensors, x_: away.pop() if away else real(tensors, x_))
    with torch.no_grad(), caplog.at_level(logging.WARNING, logger=fast_path.__name__):
        fast.forward(layer, x, 4)
        assert fast.wait(timeout=60)
        assert fast.summary() == {"ready": 0, "pending": 0, "failed": 0} and compiler.compiled == []
        fast.forward(layer, x, 4)  # the weights are back: asked again, and compiled
        assert fast.wait(timeout=60)
        assert fast.summary() == {"ready": 1, "pending": 0, "failed": 0}
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


def test_a_compile_draws_nothing_from_the_global_generator():
    """The worker's example input is random, but from a generator of its own: a draw from the global one (CUDA's,
    on a GPU) would move the seed stream of whatever samples on the main thread."""
    layer = bf16_layer()
    fast = cpu_fast_path(StandInCompiler())
    x = torch.randn(8, layer.channels, 3, 4, generator=torch.Generator().manual_seed(8)).bfloat16()
    before = torch.get_rng_state()
    with torch.no_grad():
        fast.forward(layer, x, 4)
        assert fast.wait(timeout=60) and fast.summary()["ready"] == 1
    assert torch.equal(torch.get_rng_state(), before)


def test_each_compiled_shape_is_said_with_its_compile_time(caplog):
    """The user sees in the log which shape became fast and what its compile cost, without the time it waited."""
    layer = bf16_layer()
    fast = cpu_fast_path(StandInCompiler())
    x = torch.randn(8, layer.channels, 3, 4, generator=torch.Generator().manual_seed(9)).bfloat16()
    with torch.no_grad(), caplog.at_level(logging.INFO, logger=fast_path.__name__):
        fast.forward(layer, x, 4)
        assert fast.wait(timeout=60)
    ready = [r.getMessage() for r in caplog.records if "fast path ready" in r.getMessage()]
    assert len(ready) == 1
    assert f"4 frames × {tuple(x.shape)} bfloat16" in ready[0] and " s of compiling" in ready[0]
    assert "no more shapes compiling" in ready[0]
