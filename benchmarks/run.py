"""GPU benchmark: seconds per step, peak memory and FLOPs of AnimateDiff sampling, against the plain UNet.

Runs on the lent GPU (see benchmarks/NOTES.md for the device command). Workload of issue 12: a random
SD1.5-architecture UNet loaded through ComfyUI's own loader, a random v2-layout motion module through our
nodes, fp16, euler, cfg 7.5, cond and uncond batched the way ComfyUI batches them. Every figure that matters
is a ratio to the plain UNet measured in the same run, so the table compares across machines.

Seconds per step: the sampler's per-step callback, CUDA-synchronised, median over the steps after the
first two (loading, allocation and compilation stay out). Peak memory: `torch.cuda.max_memory_allocated`
over a timed run, reset after a warm-up run with the models already resident (so it includes weights).
"""

from __future__ import annotations

import argparse
import functools
import logging
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from scripts import fixtures, inprocess  # noqa: E402

log = logging.getLogger("benchmark")
GIB = 1024 ** 3


@dataclass
class Row:
    case: str
    frames: int
    size: int
    s_per_step: float
    peak_gib: float
    windows: int = 1
    tflop_per_step: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def s_per_window(self) -> float:
        return self.s_per_step / self.windows


def matmul_rate(device: torch.device) -> float:
    """Measured fp16 matrix rate in TFLOP/s: the floor's denominator."""
    n = 8192
    a = torch.randn(n, n, device=device, dtype=torch.float16)
    b = torch.randn(n, n, device=device, dtype=torch.float16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    start = time.perf_counter()
    reps = 20
    for _ in range(reps):
        a @ b
    torch.cuda.synchronize()
    return 2 * n ** 3 * reps / (time.perf_counter() - start) / 1e12


def random_unet(config: dict, seed: int, device: torch.device) -> dict[str, torch.Tensor]:
    """A random UNet state dict in ComfyUI's key layout, drawn on the GPU (fast) with fixed seeds."""
    import comfy.ldm.modules.diffusionmodules.openaimodel as openaimodel
    import comfy.ops

    with torch.device("meta"):
        unet = openaimodel.UNetModel(**config, device="meta", operations=comfy.ops.disable_weight_init)
    sd = {}
    gen = torch.Generator(device=device)
    for i, (key, value) in enumerate(unet.state_dict().items()):
        gen.manual_seed(seed * 100_003 + i)
        shape = value.shape
        if len(shape) == 1:
            sd[key] = (torch.ones if key.endswith("weight") else torch.zeros)(shape, device=device, dtype=torch.float16)
        else:
            fan_in = shape[1:].numel()
            sd[key] = (torch.randn(shape, generator=gen, device=device) / fan_in ** 0.5).half()
    return sd


def conditioning(batch_ctx: int, dim: int, device, pooled: int | None = None, seed: int = 0):
    gen = torch.Generator(device=device).manual_seed(seed)
    extra = {}
    if pooled:
        extra["pooled_output"] = torch.randn(1, pooled, generator=gen, device=device, dtype=torch.float16)
    return [[torch.randn(1, batch_ctx, dim, generator=gen, device=device, dtype=torch.float16), extra]]


def sample_steps(model, frames: int, size: int, steps: int, positive, negative, seed: int = 0):
    """One euler sampling run; returns per-step wall times (synchronised) and the output latent."""
    import comfy.sample

    latent = torch.zeros(frames, 4, size // 8, size // 8)
    noise = comfy.sample.prepare_noise(latent, seed)
    stamps = []

    def on_step(step, x0, x, total):
        torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    torch.cuda.synchronize()
    stamps.append(time.perf_counter())
    out = comfy.sample.sample(model, noise, steps, 7.5, "euler", "normal", positive, negative, latent,
                              denoise=1.0, seed=seed, callback=on_step, disable_pbar=True)
    return [b - a for a, b in zip(stamps, stamps[1:])], out


def measure(case: str, model, frames: int, size: int, steps: int, cond, windows: int = 1) -> tuple[Row, torch.Tensor]:
    positive, negative = cond
    sample_steps(model, frames, size, 2, positive, negative)
    torch.cuda.reset_peak_memory_stats()
    times, out = sample_steps(model, frames, size, steps, positive, negative)
    peak = torch.cuda.max_memory_allocated() / GIB
    s = statistics.median(times[2:]) if len(times) > 3 else statistics.median(times)
    finite = bool(torch.isfinite(out).all())
    row = Row(case, frames, size, s, peak, windows)
    if not finite:
        row.notes.append("NON-FINITE OUTPUT")
    log.info("%-34s %4d f %4d px  %.4f s/step  %.2f GiB", case, frames, size, s, peak)
    return row, out


def flops_per_step(model, frames: int, size: int, cond) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        sample_steps(model, frames, size, 1, *cond)
    return counter.get_total_flops() / 1e12


def unet_calls_per_step(model, frames: int, size: int, cond) -> int:
    """How many UNet calls one step makes: with windows, the number of windows (cond and uncond share a call)."""
    import comfy.patcher_extension

    calls = []

    def count(executor, *args, **kwargs):
        calls.append(1)
        return executor(*args, **kwargs)

    counted = model.clone()
    counted.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, "benchmark-count", count)
    sample_steps(counted, frames, size, 1, *cond)
    return len(calls)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--long-steps", type=int, default=6, help="steps for the 64/256-frame cases")
    parser.add_argument("--skip-sdxl", action="store_true")
    parser.add_argument("--skip-compile", action="store_true")
    parser.add_argument("--skip-modules", action="store_true", help="skip the motion-modules-only variant timings")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="[bench] %(message)s")
    started = time.perf_counter()

    pack = inprocess.start(None, host_args=())
    call = inprocess.call_node
    import comfy.model_management as mm
    import comfy.sd
    import folder_paths

    device = mm.get_torch_device()
    torch.backends.cuda.matmul.allow_tf32 = True
    rate = matmul_rate(device)
    log.info("device %s, torch %s, fp16 matmul %.0f TFLOP/s", torch.cuda.get_device_name(), torch.__version__, rate)

    models_dir = Path(tempfile.mkdtemp(prefix="animateflow-bench-"))
    folder_paths.add_model_folder_path("animatediff_models", str(models_dir), is_default=True)
    fixtures.ensure_motion_module(models_dir, "v2")

    unet_sd = random_unet(fixtures.sd15_unet_config(), 0, device)
    plain = comfy.sd.load_diffusion_model_state_dict(unet_sd, model_options={"dtype": torch.float16})
    del unet_sd
    (motion,) = call("AnimateFlow_LoadMotionModule", model_name=fixtures.MOTION_MODULE_FILES["v2"])[:1]

    def apply(fast_path: str, **extra):
        return call("AnimateFlow_ApplyMotionModule", model=plain, motion_module=motion, motion_scale=1.0,
                    beta_schedule="auto", fast_path=fast_path, **extra)[0]

    eager, fast = apply("off"), apply("auto")
    cond = (conditioning(77, 768, device, seed=1), conditioning(77, 768, device, seed=2))

    rows: list[Row] = []
    plain16, _ = measure("plain UNet (16 images)", plain, 16, 512, args.steps, cond)
    ad16, _ = measure("AnimateDiff v2, eager", eager, 16, 512, args.steps, cond)
    fast16, _ = measure("AnimateDiff v2, fast path", fast, 16, 512, args.steps, cond)
    plain16.tflop_per_step = flops_per_step(plain, 16, 512, cond)
    ad16.tflop_per_step = flops_per_step(eager, 16, 512, cond)
    rows += [plain16, ad16, fast16]
    check = fast_path_check(eager, fast, cond) + attention_check(inprocess.pack_module(pack, "motion.fast_path"),
                                                                 device)

    (options,) = call("AnimateFlow_ContextOptions", context_length=16, context_stride=1, context_overlap=4,
                      closed_loop=False, schedule="uniform", fuse_method="pyramid")[:1]
    calls16 = unet_calls_per_step(eager, 16, 512, cond)
    for mode, label in (("off", "eager"), ("auto", "fast path")):
        windowed = apply(mode, context_options=options)
        for frames in (64, 256):
            windows = unet_calls_per_step(windowed, frames, 512, cond) // calls16
            row, _ = measure(f"AnimateDiff v2, context 16/4, {label}", windowed, frames, 512, args.long_steps, cond,
                             windows=windows)
            rows.append(row)
    rows[-4:] = [rows[-4], rows[-2], rows[-3], rows[-1]]  # 64 eager, 64 fast, 256 eager, 256 fast

    plain768, _ = measure("plain UNet (16 images)", plain, 16, 768, args.steps, cond)
    ad768, _ = measure("AnimateDiff v2, eager", eager, 16, 768, args.steps, cond)
    fast768, _ = measure("AnimateDiff v2, fast path", fast, 16, 768, args.steps, cond)
    rows += [plain768, ad768, fast768]

    if not args.skip_compile:
        from comfy_api.torch_helpers import set_torch_compile_wrapper

        compiled = eager.clone()
        set_torch_compile_wrapper(model=compiled, backend="inductor")  # what ComfyUI's TorchCompileModel does
        row, _ = measure("AnimateDiff v2 eager + TorchCompileModel", compiled, 16, 512, args.steps, cond)
        rows.append(row)

    print(f"\n[bench] {time.perf_counter() - started:.0f} s so far")
    module_rows = [] if args.skip_modules else module_variants(inprocess.pack_module(pack, "motion.fast_path"),
                                                               motion.model, device)
    print_table(rows, plain16, plain768, rate)
    print(check)
    print_module_variants(module_rows)

    if not args.skip_sdxl:
        run_sdxl(call, models_dir, device)
    print(f"\n[bench] total {time.perf_counter() - started:.0f} s")
    return 0


def fast_path_check(eager, fast, cond, tolerance: float = 1e-2) -> str:
    """The same 16-frame UNet evaluation with the fast path off and on: one euler step to sigma 0 returns the CFG'd
    prediction of a single UNet call on identical noise. fp16 rounding differs between the attention kernels."""
    _, reference = sample_steps(eager, 16, 512, 1, *cond)
    _, result = sample_steps(fast, 16, 512, 1, *cond)
    error = ((result - reference).float().norm() / reference.float().norm()).item()
    finite = bool(torch.isfinite(result).all())
    verdict = "PASS" if finite and error < tolerance else "FAIL"
    return (f"\nfast path check (16 f 512², one UNet evaluation, fast vs eager): relative error {error:.2e} "
            f"(tolerance {tolerance:g}), finite {finite}: {verdict}")


def module_variants(fast_path, motion_model, device, frames: int = 16, videos: int = 2,
                    size: int = 64) -> list[tuple[str, float]]:
    """The 21 motion modules of one 512² step alone (a copy of the loaded module), per variant, so each idea of the
    fast path is measured on its own: the layout change, the attention, and compilation."""
    import copy

    import torch.nn.functional as F

    model = copy.deepcopy(motion_model).to(device, torch.float16)
    places = []
    for level, block in enumerate(model.down_blocks):
        places += [(m, size >> level) for m in block.motion_modules]
    if model.mid_block is not None:
        places += [(m, size >> (len(model.down_blocks) - 1)) for m in model.mid_block.motion_modules]
    for level, block in enumerate(model.up_blocks):
        places += [(m, size >> (len(model.up_blocks) - 1 - level)) for m in block.motion_modules]
    gen = torch.Generator(device=device).manual_seed(5)
    inputs = [torch.randn(videos * frames, m.channels, s, s, generator=gen, device=device, dtype=torch.float16)
              for m, s in places]

    def sdpa(q, k, v, heads):
        s_, f_, inner = q.shape
        q, k, v = (t.view(s_, f_, heads, inner // heads).transpose(1, 2) for t in (q, k, v))
        return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(s_, f_, inner)

    def gathered(m, x):
        return fast_path.gather_params(m.temporal_transformer, x)

    compiled = fast_path.compiled_math()
    variants = [
        ("plain module, eager (ComfyUI attention)", lambda m, x: m(x, frames, 1.0)),
        ("one layout change, fused qkv, matmul attention, eager",
         lambda m, x: fast_path.transformer_math(x, frames, 1.0, 8, gathered(m, x))),
        ("the same, torch.compile, SDPA attention",
         lambda m, x: compiled(x, frames, 1.0, 8, gathered(m, x), sdpa)),
        ("the same, torch.compile, matmul attention",
         lambda m, x: compiled(x, frames, 1.0, 8, gathered(m, x), fast_path.short_attention)),
        (f"fast path as shipped (attention: {fast_path.attention_kernel().__module__.rsplit('.', 1)[-1]})",
         lambda m, x: fast_path.forward(m, x, frames, 1.0)),
    ]
    results = []
    with torch.no_grad(), torch._dynamo.config.patch(recompile_limit=fast_path.RECOMPILE_LIMIT):
        for name, fn in variants:
            for _ in range(2):
                for (m, _s), x in zip(places, inputs):
                    fn(m, x)
            torch.cuda.synchronize()
            times = []
            for _ in range(10):
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                for (m, _s), x in zip(places, inputs):
                    fn(m, x)
                end.record()
                torch.cuda.synchronize()
                times.append(start.elapsed_time(end) / 1000)
            results.append((name, statistics.median(times)))
            log.info("modules only: %-48s %.4f s per step", name, results[-1][1])
    try:
        from torch.profiler import ProfilerActivity, profile

        with torch.no_grad(), profile(activities=[ProfilerActivity.CUDA]) as prof:
            for (m, _s), x in zip(places, inputs):
                fast_path.forward(m, x, frames, 1.0)
            torch.cuda.synchronize()
        print("\nfast path, 21 modules of one step, kernels by device time:")
        print(prof.key_averages().table(sort_by="self_device_time_total", row_limit=14, max_name_column_width=70))
    except Exception as error:  # the profile is for the notes; the timings above stand without it
        log.warning("profile failed: %s", error)
    del model
    return results


def attention_check(fast_path, device) -> str:
    """The attention the fast path uses against a float64 reference on the shapes of a 16 f 512² step."""
    lines = [f"\nattention check ({fast_path.attention_kernel().__module__}) vs float64:"]
    gen = torch.Generator(device=device).manual_seed(9)
    for sequences, channels in ((8192, 320), (2048, 640), (512, 1280), (128, 1280)):
        qkv = torch.randn(sequences, 16, 3 * channels, generator=gen, device=device, dtype=torch.float16)
        q, k, v = qkv.split(channels, dim=-1)
        out = fast_path.attention_kernel()(q, k, v, 8)
        d = channels // 8
        r = [t.double().view(sequences, 16, 8, d).transpose(1, 2) for t in (q, k, v)]
        ref = (torch.softmax(r[0] @ r[1].transpose(-1, -2) * d ** -0.5, -1) @ r[2]).transpose(1, 2).reshape(
            sequences, 16, channels)
        error = ((out.double() - ref).norm() / ref.norm()).item()
        lines.append(f"  {sequences} sequences × 16 frames × {channels} ch: relative error {error:.1e} "
                     f"{'PASS' if error < 1e-2 and torch.isfinite(out).all() else 'FAIL'}")
    return "\n".join(lines)


def print_module_variants(rows: list[tuple[str, float]]) -> None:
    if not rows:
        return
    print("\n| motion modules only (21 modules of one 16 f 512² CFG step) | s per step |\n|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.4f} |")


def run_sdxl(call, models_dir: Path, device) -> None:
    """One real SDXL-architecture sampling run with an SDXL-layout module (random weights): it must run and stay finite."""
    import comfy.model_management as mm
    import comfy.sd

    mm.unload_all_models()
    mm.soft_empty_cache()
    fixtures.ensure_motion_module(models_dir, "sdxl")
    config = {'use_checkpoint': False, 'image_size': 32, 'out_channels': 4, 'use_spatial_transformer': True,
              'legacy': False, 'num_classes': 'sequential', 'adm_in_channels': 2816, 'in_channels': 4,
              'model_channels': 320, 'num_res_blocks': [2, 2, 2], 'transformer_depth': [0, 0, 2, 2, 10, 10],
              'channel_mult': [1, 2, 4], 'transformer_depth_middle': 10, 'use_linear_in_transformer': True,
              'context_dim': 2048, 'num_head_channels': 64, 'transformer_depth_output': [0, 0, 0, 2, 2, 2, 10, 10, 10],
              'use_temporal_attention': False, 'use_temporal_resblock': False}
    sdxl = comfy.sd.load_diffusion_model_state_dict(random_unet(config, 1, device),
                                                    model_options={"dtype": torch.float16})
    (motion,) = call("AnimateFlow_LoadMotionModule", model_name=fixtures.MOTION_MODULE_FILES["sdxl"])[:1]
    animated = call("AnimateFlow_ApplyMotionModule", model=sdxl, motion_module=motion, motion_scale=1.0,
                    beta_schedule="auto")[0]
    cond = (conditioning(77, 2048, device, pooled=1280, seed=1), conditioning(77, 2048, device, pooled=1280, seed=2))
    row, out = measure("SDXL + mm_sdxl_v10_beta layout", animated, 16, 1024, 6, cond)
    print(f"\nSDXL sampling (random weights, 16 f 1024², 6 steps): {row.s_per_step:.3f} s/step, "
          f"peak {row.peak_gib:.2f} GiB, finite output: {bool(torch.isfinite(out).all())}")


def print_table(rows: list[Row], plain16: Row, plain768: Row, rate: float) -> None:
    print(f"\n| case | frames | size | s/step | s/window | × plain (same size, 16 images) | peak GiB | "
          f"TFLOP/step | floor s/step | notes |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        base = plain768 if row.size == 768 else plain16
        ratio = row.s_per_window / base.s_per_step
        floor = f"{row.tflop_per_step / rate:.4f}" if row.tflop_per_step else ""
        tflop = f"{row.tflop_per_step:.1f}" if row.tflop_per_step else ""
        print(f"| {row.case} | {row.frames} | {row.size}² | {row.s_per_step:.4f} | {row.s_per_window:.4f} | "
              f"{ratio:.2f}× | {row.peak_gib:.2f} | {tflop} | {floor} | {'; '.join(row.notes)} |")
    print(f"\nfp16 matmul rate measured: {rate:.0f} TFLOP/s; torch {torch.__version__}; "
          f"{torch.cuda.get_device_name()}")


if __name__ == "__main__":
    sys.exit(main())
