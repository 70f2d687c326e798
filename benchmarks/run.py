"""GPU benchmark: ours against the leading pack in the same process — s/step, peak memory, first render, equality.

Runs on the lent GPU in one device call (benchmarks/NOTES.md has the command). Workload of issues 12 and 20: a
random SD1.5-architecture UNet loaded through ComfyUI's own loader, a random v2-layout motion module file, fp16,
euler, cfg 7.5, cond and uncond batched the way ComfyUI batches them. The leading pack (ComfyUI-AnimateDiff-Evolved,
from its source archive) is imported the way ComfyUI imports a custom node package, in this process, and applies
the same file with ADE_AnimateDiffLoaderGen1 (beta schedule autoselect); ADE_StandardStaticContextOptions 16/4
against our static 16/4 windows. The headline is ours ÷ the leading pack; ratios to the plain UNet drift ±15%.

Seconds per step: the sampler's per-step callback, CUDA-synchronised, median over the timed steps after a warm-up
run (for the fast path, after its compiles finished). Peak: `torch.cuda.max_memory_allocated` over the timed run,
reset after the warm-up (weights included).

First render, the figure that counts: a fresh process per measurement (ComfyUI, the models, two plain warm-up
steps, then one 16 f 512² 20-step sampling call of ours, wall time): ours fast on the fresh machine before anything
compiled (cold caches), ours eager, and ours fast again at the end (warm caches). The table's first-render column
is the same call in this process, in the order plain, ours fast, ours eager, leading pack, so a later one finds
cuDNN plans and the motion module already loaded: read it as order-dependent.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import logging
import os
import statistics
import subprocess
import sys
import tarfile
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
ANCHOR = "comfyui-animatediff-evolved-d8d163c.tar.gz"
# ../shared/anchors beside a checkout; .device/anchors when this runs from the device carry (.device/pack/benchmarks)
# or from a checkout whose .device the prepare script built.
ANCHOR_PLACES = (REPO_ROOT.parent / "shared" / "anchors" / ANCHOR, REPO_ROOT.parent / "anchors" / ANCHOR,
                 REPO_ROOT / ".device" / "anchors" / ANCHOR)
FIRST_RENDER_TAG = "FIRST_RENDER_JSON "


@dataclass
class Plan:
    """Sizes of one run: the issue's workload, or a tiny one that checks the script itself on CPU (--smoke)."""

    size: int = 512
    big: int = 768
    frames: int = 16
    window: int = 16
    overlap: int = 4
    long_frames: tuple[int, ...] = (64, 256)
    steps: int = 20
    long_steps: int = 3

    @classmethod
    def smoke(cls) -> Plan:
        return cls(size=64, big=128, frames=4, window=4, overlap=1, long_frames=(7,), steps=2, long_steps=1)


@dataclass
class Row:
    case: str
    frames: int
    size: int
    s_per_step: float
    peak_gib: float
    windows: float = 1.0
    first_render: float | None = None
    group: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def s_per_window(self) -> float:
        return self.s_per_step / self.windows


def cuda() -> bool:
    return torch.cuda.is_available()


def sync() -> None:
    """Wait for every GPU (a multi-GPU sampling's other devices too)."""
    if cuda():
        for i in range(torch.cuda.device_count()):
            torch.cuda.synchronize(i)


def reset_peak() -> None:
    if cuda():
        torch.cuda.reset_peak_memory_stats()


def peak_gib() -> float:
    return torch.cuda.max_memory_allocated() / GIB if cuda() else 0.0


def matmul_rate(device: torch.device) -> float:
    """Measured fp16 matrix rate in TFLOP/s: the floor's denominator."""
    if not cuda():
        return float("nan")
    n = 8192
    a = torch.randn(n, n, device=device, dtype=torch.float16)
    b = torch.randn(n, n, device=device, dtype=torch.float16)
    for _ in range(3):
        a @ b
    sync()
    start = time.perf_counter()
    reps = 20
    for _ in range(reps):
        a @ b
    sync()
    return 2 * n ** 3 * reps / (time.perf_counter() - start) / 1e12


def random_unet(config: dict, seed: int, device: torch.device) -> dict[str, torch.Tensor]:
    """A random UNet state dict in ComfyUI's key layout, drawn on the device (fast) with fixed seeds."""
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


def sample_steps(model, frames: int, size: int, steps: int, cond, seed: int = 0, cfg: float = 7.5):
    """One euler sampling run: per-step wall times (synchronised), the whole call's wall time, the output latent."""
    import comfy.sample

    positive, negative = cond
    latent = torch.zeros(frames, 4, size // 8, size // 8)
    noise = comfy.sample.prepare_noise(latent, seed)
    stamps = []

    def on_step(step, x0, x, total):
        sync()
        stamps.append(time.perf_counter())

    sync()
    stamps.append(time.perf_counter())
    out = comfy.sample.sample(model, noise, steps, cfg, "euler", "normal", positive, negative, latent,
                              denoise=1.0, seed=seed, callback=on_step, disable_pbar=True)
    sync()
    return [b - a for a, b in zip(stamps, stamps[1:])], time.perf_counter() - stamps[0], out


class Bench:
    """The models of one run and the figures measured on them."""

    def __init__(self, plan: Plan, fast_path_of):
        self.plan = plan
        self.fast_path_of = fast_path_of
        self.rows: list[Row] = []
        self.outputs: dict[tuple[str, int, int], torch.Tensor] = {}
        self.lines: list[str] = []

    def wait_for_compiles(self, model) -> None:
        fast = self.fast_path_of(model)
        if fast is not None:
            fast.wait()

    def measure(self, group: str, case: str, model, frames: int, size: int, steps: int, cond,
                windows: float = 1.0, warmup: int = 2) -> Row:
        import comfy.model_management as mm

        mm.unload_all_models()  # the other rows' motion modules stay out of this row's peak
        mm.soft_empty_cache()
        sample_steps(model, frames, size, warmup, cond)
        self.wait_for_compiles(model)
        reset_peak()
        times, _, out = sample_steps(model, frames, size, steps, cond)
        timed = times[2:] if len(times) > 4 else times
        row = Row(case, frames, size, statistics.median(timed), peak_gib(), windows, group=group)
        if not bool(torch.isfinite(out).all()):
            row.notes.append("NON-FINITE OUTPUT")
        self.outputs[(case, frames, size)] = out
        log.info("%-28s %4d f %4d px  %.4f s/step  %.2f GiB", case, frames, size, row.s_per_step, row.peak_gib)
        self.rows.append(row)
        return row


def windows_per_step(model, frames: int, size: int, cond, window: int) -> float:
    """UNet work of one step in windows: frames through the diffusion model ÷ (window × cond/uncond). Counts frames,
    not calls, so it stays right when several windows share one call."""
    import comfy.patcher_extension

    seen = []

    def count(executor, x, *args, **kwargs):
        seen.append(x.shape[0])
        return executor(x, *args, **kwargs)

    counted = model.clone()
    counted.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, "benchmark-count", count)
    sample_steps(counted, frames, size, 1, cond)
    return sum(seen) / (2 * window)


def flops_per_step(model, frames: int, size: int, cond) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        sample_steps(model, frames, size, 1, cond)
    return counter.get_total_flops() / 1e12


def relative_error(result: torch.Tensor, reference: torch.Tensor) -> float:
    return ((result.double() - reference.double()).norm() / reference.double().norm()).item()


def find_anchor(given: str | None) -> Path:
    for place in ([Path(given)] if given else ANCHOR_PLACES):
        if place.exists():
            return place
    raise FileNotFoundError(f"the leading pack's source ({ANCHOR}) is at none of {[str(p) for p in ANCHOR_PLACES]}; "
                            "pass --anchor (an archive or an unpacked folder)")


def load_leading_pack(anchor: Path) -> None:
    """Import the leading pack as ComfyUI imports a custom node package: its folder through `load_custom_node`."""
    import asyncio

    import nodes

    folder = anchor
    if anchor.is_file():
        target = Path(tempfile.mkdtemp(prefix="animateflow-anchor-"))
        with tarfile.open(anchor) as archive:
            archive.extractall(target, filter="data")
        folder = next(p for p in target.iterdir() if p.is_dir())
    if not asyncio.run(nodes.load_custom_node(str(folder))):
        raise RuntimeError(f"ComfyUI could not import the leading pack from {folder}")
    log.info("leading pack imported from %s", folder)


def node_input_defaults(class_name: str) -> dict:
    import nodes

    cls = nodes.NODE_CLASS_MAPPINGS[class_name]
    return {i.id: getattr(i, "default", None) for i in cls.define_schema().inputs}


def parse_options(pairs: list[str]) -> dict:
    options = {}
    for pair in pairs:
        key, _, text = pair.partition("=")
        value: object = text
        for kind in (int, float):
            try:
                value = kind(text)
                break
            except ValueError:
                pass
        if text.lower() in ("true", "false"):
            value = text.lower() == "true"
        options[key] = value
    return options


def setup(plan: Plan, smoke: bool, anchor: Path | None, models_dir: Path | None = None):
    """ComfyUI with our pack (and the leading pack when `anchor` is given), the plain UNet, the motion module file."""
    pack = inprocess.start(None, host_args=("--cpu",) if smoke else ())
    import comfy.model_management as mm
    import comfy.sd
    import folder_paths

    if anchor is not None:
        load_leading_pack(anchor)
    device = mm.get_torch_device()
    if cuda():
        torch.backends.cuda.matmul.allow_tf32 = True
    models_dir = models_dir or Path(tempfile.mkdtemp(prefix="animateflow-bench-"))
    folder_paths.add_model_folder_path("animatediff_models", str(models_dir), is_default=True)
    fixtures.ensure_motion_module(models_dir, "v2")
    unet_sd = random_unet(fixtures.sd15_unet_config(), 0, device)
    # ComfyUI's loader pops the keys it loads: each model gets its own copy of the dict (the tensors are shared)
    plain = comfy.sd.load_diffusion_model_state_dict(dict(unet_sd), model_options={"dtype": torch.float16})
    cond = (conditioning(77, 768, device, seed=1), conditioning(77, 768, device, seed=2))
    return pack, device, models_dir, unet_sd, plain, cond


def apply_ours(plain, motion, fast_path: str, **extra):
    return inprocess.call_node("AnimateFlow_ApplyMotionModule", model=plain, motion_module=motion, motion_scale=1.0,
                               beta_schedule="auto", fast_path=fast_path, **extra)[0]


def apply_leading(plain, **extra):
    return inprocess.call_node("ADE_AnimateDiffLoaderGen1", model=plain,
                               model_name=fixtures.MOTION_MODULE_FILES["v2"], beta_schedule="autoselect", **extra)[0]


def first_render_child(plan: Plan, smoke: bool, mode: str, models_dir: Path) -> int:
    """One fresh process: two plain warm-up steps, then ours (fast path `mode`) samples its first render."""
    pack, _device, _dir, unet_sd, plain, cond = setup(plan, smoke, None, models_dir)
    del unet_sd
    fast_path_of = inprocess.pack_module(pack, "motion.inject").fast_path_of
    (motion,) = inprocess.call_node("AnimateFlow_LoadMotionModule", model_name=fixtures.MOTION_MODULE_FILES["v2"])[:1]
    ours = apply_ours(plain, motion, mode)
    sample_steps(plain, plan.frames, plan.size, 2, cond)
    _, seconds, out = sample_steps(ours, plan.frames, plan.size, plan.steps, cond)
    print(FIRST_RENDER_TAG + json.dumps({"seconds": seconds, "finite": bool(torch.isfinite(out).all()),
                                         "fast_path": fast_path_of(ours).summary()}), flush=True)
    os._exit(0)  # a user's process would compile on after the render; this one has measured what it came for


def run_first_render_child(plan: Plan, smoke: bool, mode: str, models_dir: Path) -> dict | None:
    command = [sys.executable, str(Path(__file__).resolve()), "--first-render-child", mode, "--models-dir",
               str(models_dir)] + (["--smoke"] if smoke else [])
    started = time.perf_counter()
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300 if smoke else 150)
    except subprocess.TimeoutExpired:
        log.warning("first render in a fresh process (%s) timed out", mode)
        return None
    for line in done.stdout.splitlines():
        if line.startswith(FIRST_RENDER_TAG):
            result = json.loads(line[len(FIRST_RENDER_TAG):])
            result["process_wall"] = time.perf_counter() - started
            log.info("first render in a fresh process, ours %s: %.2f s", mode, result["seconds"])
            return result
    log.warning("first render in a fresh process (%s) failed (exit %s): %s", mode, done.returncode,
                done.stderr[-2000:])
    return None


def module_checks(fast_path_module, motion_model, device) -> list[str]:
    """bf16, and frame counts that leave part of the attention kernel's 16/32-frame block masked: the fast path on
    real motion-module layers (compiled, on the device) against the same layer in float32, beside the plain path's
    error in the same dtype. Pass: finite and at most twice the plain path's error (+1e-3)."""
    if device.type != "cuda":
        return ["module checks: skipped (no CUDA)"]
    lines = ["\nfast path vs float32, single motion modules (16×16 tokens, 2 videos), after compile:",
             "| channels | dtype | frames | plain path error | fast path error | verdict |", "|---|---|---|---|---|---|"]
    layers = {m.channels: m for b in motion_model.down_blocks for m in b.motion_modules}
    cases = [(c, dtype, frames) for dtype, frames in ((torch.float16, 12), (torch.bfloat16, 24)) for c in (320, 1280)]
    fast = fast_path_module.FastPath("auto")
    prepared = []
    gen = torch.Generator(device=device).manual_seed(11)
    with torch.inference_mode():
        for channels, dtype, frames in cases:
            layer = copy.deepcopy(layers[channels]).to(device, dtype)
            x = torch.randn(2 * frames, channels, 16, 16, generator=gen, device=device).to(dtype)
            fast.forward(layer, x, frames)  # plain path now; its compile starts
            prepared.append((channels, dtype, frames, layer, x))
        fast.wait()
        for channels, dtype, frames, layer, x in prepared:
            reference = copy.deepcopy(layer).float()(x.float(), frames) - x.float()
            plain = layer(x, frames) - x
            result = fast.forward(layer, x, frames) - x
            plain_error, fast_error = relative_error(plain, reference), relative_error(result, reference)
            ok = bool(torch.isfinite(result).all()) and fast_error <= 2 * plain_error + 1e-3
            lines.append(f"| {channels} | {str(dtype).removeprefix('torch.')} | {frames} | {plain_error:.2e} | "
                         f"{fast_error:.2e} | {'PASS' if ok else 'FAIL'} |")
    lines.append(f"fast path shapes: {fast.summary()}")
    return lines


KERNEL_GROUPS = (
    ("motion attention (ours, Triton)", ("short_attention",)),
    ("inductor fused kernels (motion norms, GEGLU, permutes, residuals)", ("triton_",)),
    ("NCHW<->NHWC layout transposes (around cuDNN convs)", ("nchwtonhwc", "nhwctonchw")),
    ("attention through SDPA (cuDNN / flash / mem-efficient)", ("sdpa", "flash", "fmha", "attention", "efficient")),
    ("convolutions (cuDNN)", ("fprop", "dgrad", "conv", "implicit")),
    ("GEMMs (cuBLAS)", ("gemm", "nvjet", "cutlass", "xmma", "s16816", "h16816")),
    ("GroupNorm / LayerNorm (eager)", ("norm", "moments", "fusedparams")),
    ("elementwise, copies, reductions (eager)", ("",)),
)


def kernel_profile(model, frames: int, size: int, cond, title: str) -> list[str]:
    """One sampling step's CUDA kernels by group and the top kernels: where a step's time goes."""
    if not cuda():
        return []
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        sample_steps(model, frames, size, 1, cond)
    kernels = [(e.key, e.self_device_time_total / 1e3, e.count) for e in prof.key_averages()
               if getattr(e, "device_type", None) == DeviceType.CUDA and e.self_device_time_total > 0]
    if not kernels:
        return [f"\n{title}: the profiler recorded no kernels"]
    total = sum(t for _, t, _ in kernels)
    grouped: dict[str, float] = {}
    for name, ms, _ in kernels:
        group = next(g for g, needles in KERNEL_GROUPS if any(n in name.lower() for n in needles))
        grouped[group] = grouped.get(group, 0.0) + ms
    lines = [f"\n{title}: {total:.1f} ms of kernels in one step", "| kernel group | ms | share |", "|---|---|---|"]
    lines += [f"| {g} | {ms:.1f} | {ms / total:.0%} |" for g, ms in sorted(grouped.items(), key=lambda i: -i[1])]
    lines += ["top kernels:"] + [f"  {ms:7.2f} ms  {count:5d}×  {name[:110]}"
                                 for name, ms, count in sorted(kernels, key=lambda k: -k[1])[:12]]
    return lines


def print_table(rows: list[Row], plain_by_size: dict[int, Row]) -> None:
    lead = {(r.frames, r.size): r for r in rows if r.group == "leading"}
    print("\n| case | frames | size | s/step | s/window | ÷ leading pack | ÷ plain | peak GiB | first render s | notes |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        base = plain_by_size.get(row.size)
        leading = lead.get((row.frames, row.size))
        to_plain = f"{row.s_per_window / base.s_per_step:.2f}×" if base else ""
        to_lead = f"{row.s_per_window / leading.s_per_window:.2f}×" if leading else ""
        first = f"{row.first_render:.2f}" if row.first_render is not None else ""
        windows = f"{row.s_per_window:.4f}" + (f" ({row.windows:g} windows)" if row.windows != 1 else "")
        print(f"| {row.case} | {row.frames} | {row.size}² | {row.s_per_step:.4f} | {windows} | {to_lead} | "
              f"{to_plain} | {row.peak_gib:.2f} | {first} | {'; '.join(row.notes)} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--anchor", help="the leading pack: its source archive or unpacked folder "
                                         f"(default: {ANCHOR} in ../shared/anchors or .device/anchors)")
    parser.add_argument("--steps", type=int, help="steps at 16 frames (default 20)")
    parser.add_argument("--long-steps", type=int, help="timed steps for the context-window cases (default 3)")
    parser.add_argument("--context-option", action="append", default=[], metavar="KEY=VALUE",
                        help="extra input for our Context Options node, used only if the node has it "
                             "(e.g. max_batched_windows=4)")
    parser.add_argument("--long-frames", help="frame counts of the context-window cases, comma-separated "
                                              "(default 64,256)")
    parser.add_argument("--skip-long", action="store_true", help="skip the context-window cases")
    parser.add_argument("--skip-big", action="store_true", help="skip the 768² cases")
    parser.add_argument("--skip-fresh-processes", action="store_true",
                        help="skip the first renders in fresh processes")
    parser.add_argument("--models-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--sdxl", action="store_true", help="also sample a random SDXL UNet with an SDXL module")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on CPU: checks the script, measures nothing")
    parser.add_argument("--first-render-child", choices=("auto", "off"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="[bench] %(message)s")
    plan = Plan.smoke() if args.smoke else Plan()
    plan.steps = args.steps or plan.steps
    plan.long_steps = args.long_steps or plan.long_steps
    if args.long_frames:
        plan.long_frames = tuple(int(f) for f in args.long_frames.split(","))
    if args.first_render_child:
        return first_render_child(plan, args.smoke, args.first_render_child, args.models_dir)
    started = time.perf_counter()

    pack, device, models_dir, unet_sd, plain, cond = setup(plan, args.smoke, find_anchor(args.anchor))
    # Before anything here compiles: on a fresh machine the first of these meets cold caches.
    fresh = {} if args.skip_fresh_processes else {
        "fast, cold": run_first_render_child(plan, args.smoke, "auto", models_dir),
        "eager": run_first_render_child(plan, args.smoke, "off", models_dir)}
    import comfy.model_management as mm
    import comfy.sd

    call = inprocess.call_node
    fast_path_module = inprocess.pack_module(pack, "motion.fast_path")
    fast_path_of = inprocess.pack_module(pack, "motion.inject").fast_path_of
    rate = matmul_rate(device)
    log.info("device %s, torch %s, fp16 matmul %.0f TFLOP/s", torch.cuda.get_device_name() if cuda() else "cpu",
             torch.__version__, rate)
    (motion,) = call("AnimateFlow_LoadMotionModule", model_name=fixtures.MOTION_MODULE_FILES["v2"])[:1]
    bench = Bench(plan, fast_path_of)
    p = plan

    # The float32 reference first, and then out of memory, so no peak below counts its weights.
    reference_eval = None
    if cuda():
        reference = comfy.sd.load_diffusion_model_state_dict(dict(unet_sd), model_options={"dtype": torch.float32})
        _, _, reference_eval = sample_steps(apply_ours(reference, motion, "off"), p.frames, p.size, 1, cond)
        del reference
        mm.unload_all_models()
        gc.collect()
        mm.soft_empty_cache()
    del unet_sd

    leading, eager, fast = apply_leading(plain), apply_ours(plain, motion, "off"), apply_ours(plain, motion, "auto")
    firsts = {}
    for name, model in (("plain", plain), ("fast", fast), ("eager", eager), ("leading", leading)):
        _, firsts[name], _ = sample_steps(model, p.frames, p.size, p.steps, cond)
        if name == "fast":
            fast_status = fast_path_of(fast).summary()
            waited = time.perf_counter()
            fast_path_of(fast).wait()
            compile_left = time.perf_counter() - waited
        log.info("first render %-8s %.2f s", name, firsts[name])

    plain16 = bench.measure("plain", "plain UNet (16 images)", plain, p.frames, p.size, p.steps, cond)
    lead16 = bench.measure("leading", "leading pack (ADE Gen1)", leading, p.frames, p.size, p.steps, cond)
    eager16 = bench.measure("eager", "ours, eager (fast_path off)", eager, p.frames, p.size, p.steps, cond)
    fast16 = bench.measure("fast", "ours, fast path (default)", fast, p.frames, p.size, p.steps, cond)
    for row, name in ((plain16, "plain"), (lead16, "leading"), (eager16, "eager"), (fast16, "fast")):
        row.first_render = firsts[name]
    plain_tflop = flops_per_step(plain, p.frames, p.size, cond)
    motion_tflop = flops_per_step(eager, p.frames, p.size, cond) - plain_tflop

    equal = (bench.outputs[(eager16.case, p.frames, p.size)] - bench.outputs[(lead16.case, p.frames, p.size)])
    rounding = relative_error(bench.outputs[(fast16.case, p.frames, p.size)],
                              bench.outputs[(eager16.case, p.frames, p.size)])
    lines = [f"\nsame seed, {p.steps} steps, {p.frames} f {p.size}²: max |ours eager − leading pack| = "
             f"{equal.abs().max().item():.3g} (expect 0); ours fast vs ours eager (rounding only): relative "
             f"{rounding:.2e}"]
    if reference_eval is not None:
        lines.append("one UNet evaluation (1 euler step to σ=0) vs the float32 reference (same weights, ours eager "
                     "in fp32), relative error:")
        for name, model in (("leading pack fp16", leading), ("ours eager fp16", eager), ("ours fast fp16", fast)):
            _, _, out = sample_steps(model, p.frames, p.size, 1, cond)
            error = relative_error(out, reference_eval)
            finite = bool(torch.isfinite(out).all())
            lines.append(f"  {name}: {error:.2e}{'' if finite else ' NON-FINITE'}")

    windowed: tuple = ()
    if not args.skip_long:
        ours_options = {"context_length": p.window, "context_stride": 1, "context_overlap": p.overlap,
                        "closed_loop": False, "schedule": "static", "fuse_method": "pyramid"}
        known = node_input_defaults("AnimateFlow_ContextOptions")
        extra = parse_options(args.context_option)
        ours_options.update({k: v for k, v in extra.items() if k in known})
        ignored = sorted(set(extra) - set(known))
        batching = {k: ours_options.get(k, v) for k, v in known.items() if "batch" in k}
        note = ", ".join(f"{k}={v}" for k, v in batching.items())
        if ignored:
            lines.append(f"context options not known to our node (ignored): {ignored}")
        (ours_ctx,) = call("AnimateFlow_ContextOptions", **ours_options)[:1]
        (lead_ctx,) = call("ADE_StandardStaticContextOptions", context_length=p.window, context_overlap=p.overlap)[:1]
        # Our windowed models are clones of the 16-frame ones through Set Context Options, so the fast one shares
        # their FastPath and its compiled 16-frame shapes (a window is a 16-frame video).
        label = f"static {p.window}/{p.overlap}"
        windowed = (("leading", f"leading pack, {label}", apply_leading(plain, context_options=lead_ctx)),
                    ("eager", f"ours eager, {label}", call("AnimateFlow_SetContextOptions", model=eager,
                                                           context_options=ours_ctx)[0]),
                    ("fast", f"ours fast, {label}", call("AnimateFlow_SetContextOptions", model=fast,
                                                         context_options=ours_ctx)[0]))
        for frames in p.long_frames:
            for group, case, model in windowed:
                windows = windows_per_step(model, frames, p.size, cond, p.window)
                row = bench.measure(group, case, model, frames, p.size, p.long_steps, cond, windows=windows,
                                    warmup=1)
                if group != "leading" and note:
                    row.notes.append(note)
            lead_out = bench.outputs[(windowed[0][1], frames, p.size)]
            eager_out = bench.outputs[(windowed[1][1], frames, p.size)]
            lines.append(f"context {frames} f: max |ours eager − leading pack| = "
                         f"{(eager_out - lead_out).abs().max().item():.3g}, relative "
                         f"{relative_error(eager_out, lead_out):.2e}{' (' + note + ')' if note else ''}")

    if not args.skip_big:
        plain_big = bench.measure("plain", "plain UNet (16 images)", plain, p.frames, p.big, p.steps, cond)
        bench.measure("leading", "leading pack (ADE Gen1)", leading, p.frames, p.big, p.steps, cond)
        bench.measure("eager", "ours, eager (fast_path off)", eager, p.frames, p.big, p.steps, cond)
        bench.measure("fast", "ours, fast path (default)", fast, p.frames, p.big, p.steps, cond)
    else:
        plain_big = None

    profile_lines = kernel_profile(fast, p.frames, p.size, cond, f"ours fast, {p.frames} f {p.size}²")
    profile_lines += kernel_profile(leading, p.frames, p.size, cond, f"leading pack, {p.frames} f {p.size}²")
    check_lines = module_checks(fast_path_module, motion.model, device)
    fast_summary = {"16 f": fast_path_of(fast).summary()}

    del leading, eager, fast, windowed
    mm.unload_all_models()
    gc.collect()
    mm.soft_empty_cache()
    if not args.skip_fresh_processes:
        fresh["fast, warm"] = run_first_render_child(plan, args.smoke, "auto", models_dir)

    gpu = torch.cuda.get_device_name() if cuda() else "CPU (smoke)"
    print(f"\n[bench] {gpu}, torch {torch.__version__}, ComfyUI at {inprocess.comfy_host.comfy_dir()}, "
          f"fp16 matmul {rate:.0f} TFLOP/s, total {time.perf_counter() - started:.0f} s")
    print_table(bench.rows, {p.size: plain16, **({p.big: plain_big} if plain_big else {})})
    for line in lines:
        print(line)
    print(f"\nfirst render ({p.frames} f {p.size}², {p.steps} steps, wall s of the sampling call), each in a fresh "
          f"process after two plain warm-up steps:")
    eager_fresh = (fresh.get("eager") or {}).get("seconds")
    for name, result in fresh.items():
        if result is None:
            print(f"  ours {name}: FAILED (see the log above)")
            continue
        ratio = f" = {result['seconds'] / eager_fresh:.2f}× ours eager" if eager_fresh and name != "eager" else ""
        print(f"  ours {name}: {result['seconds']:.2f} s{ratio}; fast path shapes when it ended {result['fast_path']}"
              f"{'' if result['finite'] else ' NON-FINITE'}; the process took {result['process_wall']:.0f} s")
    print(f"in this process (order-dependent, see the docstring): ours fast {firsts['fast']:.2f}, ours eager "
          f"{firsts['eager']:.2f}, leading pack {firsts['leading']:.2f}; fast path shapes after its render "
          f"{fast_status}, its compiles finished {compile_left:.1f} s after it (no sampling running)")
    print(f"fast path shapes at the end: {fast_summary}")
    if cuda():
        floor = motion_tflop / rate
        target = 0.60 * lead16.s_per_step
        print(f"\nFLOPs per step: plain UNet {plain_tflop:.1f} TFLOP, motion modules {motion_tflop:.1f} TFLOP "
              f"(floor {floor * 1e3:.1f} ms at the measured rate). 0.60× the leading pack = {target:.4f} s/step; "
              f"plain UNet alone {plain16.s_per_step:.4f}; with the motion modules at their FLOP floor: "
              f"{(plain16.s_per_step + floor) / lead16.s_per_step:.2f}× the leading pack. Motion part of ours fast: "
              f"{(fast16.s_per_step - plain16.s_per_step) * 1e3:.1f} ms/step, of the leading pack: "
              f"{(lead16.s_per_step - plain16.s_per_step) * 1e3:.1f} ms/step.")
    for line in profile_lines + check_lines:
        print(line)
    if args.sdxl:
        run_sdxl(call, models_dir, device, fast_path_of)
    print(f"\n[bench] total {time.perf_counter() - started:.0f} s")
    return 0


def run_sdxl(call, models_dir: Path, device, fast_path_of) -> None:
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
    bench = Bench(Plan(), fast_path_of)
    row = bench.measure("sdxl", "SDXL + mm_sdxl_v10_beta layout", animated, 16, 1024, 6, cond)
    out = bench.outputs[(row.case, 16, 1024)]
    print(f"\nSDXL sampling (random weights, 16 f 1024², 6 steps): {row.s_per_step:.3f} s/step, "
          f"peak {row.peak_gib:.2f} GiB, finite output: {bool(torch.isfinite(out).all())}")


if __name__ == "__main__":
    sys.exit(main())
