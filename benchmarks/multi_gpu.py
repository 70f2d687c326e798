"""Two-GPU benchmark (issue 28): context-window renders on one GPU against two, per-GPU peak memory, same frames.

Needs a machine with two GPUs of one host (the device tool's `nvidia-h100-x2`); not run yet, see RESULTS.md. The
workload is run.py's context-window case: a random SD1.5-architecture UNet in fp16 (loaded through ComfyUI's own
loader, with a `cached_patcher_init` as core's loaders give one, so core's multigpu clone can copy it), the random
v2-layout motion module file, static 16/4 windows, euler, 64 and 256 frames at 512². Each frame count runs

- `1 GPU`: our model as it is;
- `2 GPU cfg split`: core's MultiGPU CFG Split on it (cond on one GPU, uncond on the other, per window);
- `2 GPU spread`: the same with Context Options' spread_over_gpus (whole windows per GPU, weighted by speed),

at cfg 7.5 and at cfg 1 (distilled models), and reports seconds per step (median after a warm-up run), the ratio to
one GPU (target ≤ 0.55), each GPU's peak allocated memory against the one-GPU peak (target ≤ +5%), and the relative
error of the frames against one GPU (fp16 rounding: windows run on another GPU round the same, so expect 0 for the
spread and ≲ 1e-3 for the cfg split, whose cond and uncond run in separate calls).

`--smoke` runs tiny sizes on the CPU with the CPU standing in for the second GPU (`torch.device("cpu", 0)`): it
checks the script, it measures nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as bench  # noqa: E402

log = logging.getLogger("benchmark.multi_gpu")
RESULT_TAG = "MULTI_GPU_JSON "


def devices() -> list[torch.device]:
    import comfy.model_management as mm

    return mm.get_all_torch_devices()


def reset_peaks() -> None:
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            torch.cuda.reset_peak_memory_stats(i)


def peaks_gib() -> list[float]:
    if not torch.cuda.is_available():
        return [0.0]
    return [torch.cuda.max_memory_allocated(i) / bench.GIB for i in range(torch.cuda.device_count())]


def measure(case: str, model, frames: int, size: int, steps: int, cfg: float, cond) -> dict:
    import comfy.model_management as mm

    mm.unload_all_models()
    mm.soft_empty_cache()
    bench.sample_steps(model, frames, size, 1, cond, cfg=cfg)  # warm-up: loads every device's clone, times them
    reset_peaks()
    times, _, out = bench.sample_steps(model, frames, size, steps, cond, cfg=cfg)
    timed = times[1:] if len(times) > 2 else times
    row = {"case": case, "frames": frames, "size": size, "cfg": cfg, "s_per_step": statistics.median(timed),
           "peak_gib": peaks_gib(), "finite": bool(torch.isfinite(out).all())}
    log.info("%-18s %4d f cfg %.1f  %.3f s/step  peaks %s GiB", case, frames, cfg, row["s_per_step"],
             [round(p, 2) for p in row["peak_gib"]])
    return row, out


def with_factory(plain, unet_sd: dict):
    """Core's multigpu clone rebuilds a model through its loader's factory; the benchmark's UNet comes from a state
    dict, so it gets one that loads the same dict again."""
    import comfy.sd

    def load(**_):
        return comfy.sd.load_diffusion_model_state_dict(dict(unet_sd), model_options={"dtype": torch.float16})

    plain.cached_patcher_init = (load, ())
    return plain


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", default="64,256", help="frame counts, comma-separated (default 64,256)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per case (default 3)")
    parser.add_argument("--cfg", default="7.5,1.0", help="cfg values, comma-separated (default 7.5,1.0)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on CPU: checks the script, measures nothing")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    plan = bench.Plan.smoke() if args.smoke else bench.Plan()
    frame_counts = [int(f) for f in args.frames.split(",")] if not args.smoke else [9]
    cfgs = [float(c) for c in args.cfg.split(",")]
    size = plan.size
    _, _, models_dir, unet_sd, plain, cond = bench.setup(plan, args.smoke, None)
    import comfy.model_management as mm

    if args.smoke:
        mm.get_all_torch_devices = lambda exclude_current=False: [torch.device("cpu"), torch.device("cpu", 0)]
    if len(devices()) < 2:
        log.error("this machine has %d device(s); the two-GPU benchmark needs two", len(devices()))
        return 2
    plain = with_factory(plain, unet_sd)
    (motion,) = bench.inprocess.call_node("AnimateFlow_LoadMotionModule",
                                          model_name=bench.fixtures.MOTION_MODULE_FILES["v2"])

    def model(spread: bool, split: bool):
        (options,) = bench.inprocess.call_node(
            "AnimateFlow_ContextOptions", context_length=plan.window, context_stride=1,
            context_overlap=plan.overlap, closed_loop=False, schedule="static", fuse_method="pyramid",
            spread_over_gpus=spread)
        (patched,) = bench.inprocess.call_node("AnimateFlow_SetContextOptions",
                                               model=bench.apply_ours(plain, motion, "auto"), context_options=options)
        if split:
            (patched,) = bench.inprocess.call_node("MultiGPU_WorkUnits", model=patched, max_gpus=2)
        return patched

    rows = []
    for frames in frame_counts:
        for cfg in cfgs:
            one, reference = measure("1 GPU", model(False, False), frames, size, args.steps, cfg, cond)
            rows.append(one)
            for case, spread in (("2 GPU cfg split", False), ("2 GPU spread", True)):
                row, out = measure(case, model(spread, True), frames, size, args.steps, cfg, cond)
                row["ratio"] = row["s_per_step"] / one["s_per_step"]
                row["peak_vs_one"] = [p / max(one["peak_gib"]) if max(one["peak_gib"]) else float("nan")
                                      for p in row["peak_gib"]]
                row["rel_error"] = bench.relative_error(out, reference)
                row["meets_target"] = (row["ratio"] <= 0.55 and all(p <= 1.05 for p in row["peak_vs_one"]))
                rows.append(row)
    print("| frames | cfg | case | s/step | × 1 GPU | peak GiB per GPU | rel. error |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['frames']} | {row['cfg']} | {row['case']} | {row['s_per_step']:.3f} | "
              f"{row.get('ratio', 1.0):.2f} | {' / '.join(f'{p:.2f}' for p in row['peak_gib'])} | "
              f"{row.get('rel_error', 0.0):.1e} |")
    print(RESULT_TAG + json.dumps(rows))
    return 0 if all(r["finite"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
