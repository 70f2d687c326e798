"""Long-clip vid2vid memory: the same workflow through latents and through IMAGE batches, on a real ComfyUI server.

    python benchmarks/long_clip_memory.py --frames 1000 --size 512 --steps 1 --device cuda

Load Video → (latents) → KSampler with AnimateDiff v2 and uniform context windows → Video Combine, once with
Load Video's vae input and Video Combine's latents input (`scripts/long_clip.py`: frames never held whole), once
through VAE Encode / VAE Decode and IMAGE batches. Models are random-weight stand-ins with the real architectures
(generated into the base folder when missing), the clip a synthetic H.264 file of the requested size and length.
Both workflows run first on a short clip (models loaded, allocator warm); then, per path, the server's peak RSS
(VmHWM after clear_refs) is read over its RSS just before the run ("idle"). Latents run first, so memory the
allocator keeps from that run can only make the IMAGE path look smaller, never larger. Prints one table.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from scripts import comfy_host, long_clip  # noqa: E402

GIB = 1024**3
WARMUP_FRAMES = 8


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=1000, help="frames in the clip (default 1000)")
    parser.add_argument("--size", type=int, default=128, help="frame width and height in pixels (default 128)")
    parser.add_argument("--steps", type=int, default=1, help="KSampler steps; 0 leaves the sampler out (VAE only)")
    parser.add_argument("--cfg", type=float, default=1.0, help="KSampler cfg (1.0 skips the negative pass)")
    parser.add_argument("--denoise", type=float, default=0.6)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cpu starts ComfyUI with --cpu; cuda lets it pick the GPU")
    parser.add_argument("--base", type=Path, default=REPO_ROOT / ".work" / "bench-long-clip",
                        help="ComfyUI base directory (models are generated here when missing)")
    parser.add_argument("--format", choices=long_clip.FORMATS, default="mp4",
                        help="what Video Combine writes (png or gif where the ffmpeg binary is missing)")
    parser.add_argument("--paths", default="latents,images", help="which paths to run, in order")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds allowed per run")
    return parser.parse_args()


def ensure_models(base: Path, with_motion: bool) -> None:
    """Random stand-ins, made in a child process (ComfyUI's model classes must see --cpu at import)."""
    wanted = ["sd15", "v2"] if with_motion else ["sd15"]
    subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "fixtures.py"), str(base / "models"), *wanted],
                   check=True, stdout=subprocess.DEVNULL)


def machine(client: comfy_host.ComfyClient) -> str:
    stats = client.request("/system_stats")
    system, devices = stats.get("system", {}), stats.get("devices", [])
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    ram = system.get("ram_total", 0) / GIB
    device = ", ".join(d.get("name", "?") for d in devices)
    return (f"{cpu}, {os.cpu_count()} cores, {ram:.1f} GiB RAM; ComfyUI device: {device}; "
            f"ComfyUI {system.get('comfyui_version', '?')}, torch {system.get('pytorch_version', '?')}")


def run_path(server: comfy_host.ComfyServer, client: comfy_host.ComfyClient, video: str, path: str,
             args: argparse.Namespace, sampling: long_clip.Sampling | None) -> dict:
    graph = long_clip.vid2vid(video, path, f"bench_long_clip/{path}", sampling, args.format)
    server.reset_peak_memory()
    idle = server.memory()["VmRSS"]
    start = time.perf_counter()
    entry = client.run(graph, timeout=args.timeout)
    seconds = time.perf_counter() - start
    peak = server.memory()["VmHWM"]
    info = entry["outputs"]["combine"].get("animateflow_info", [])
    return {"path": path, "idle": idle, "peak": peak, "seconds": seconds, "info": info}


def main() -> int:
    args = parse_args()
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    sampling = long_clip.Sampling(steps=args.steps, cfg=args.cfg, denoise=args.denoise) if args.steps else None
    base = comfy_host.prepare_base(args.base.resolve())
    ensure_models(base, sampling is not None)
    video = f"long_clip_{args.frames}f_{args.size}.mp4"
    warmup = f"long_clip_{WARMUP_FRAMES}f_{args.size}.mp4"
    long_clip.make_clip(base / "input" / video, args.frames, args.size)
    long_clip.make_clip(base / "input" / warmup, WARMUP_FRAMES, args.size)

    # The prompt API needs no editor: where comfyui-frontend-package is missing (the GPU machine), serve none.
    no_editor = None if importlib.util.find_spec("comfyui_frontend_package") else Path(tempfile.mkdtemp())
    server = comfy_host.ComfyServer(base, log_path=base / "server.log", cpu=args.device == "cpu",
                                    front_end_root=no_editor)
    client = server.start()
    try:
        about = machine(client)
        for path in paths:
            run_path(server, client, warmup, path, args, sampling)
        rows = [run_path(server, client, video, path, args, sampling) for path in paths]
    finally:
        server.stop()

    workload = (f"{args.frames} frames {args.size}², " +
                (f"KSampler {args.steps} step(s) cfg {args.cfg:g} denoise {args.denoise:g}, AnimateDiff v2, "
                 f"context 16/4 uniform" if sampling else "no sampler (VAE encode + decode only)") +
                f", {args.format.upper()} out")
    print(f"\nMachine: {about}")
    print(f"Workload: {workload}\n")
    print("| path | frames | size | peak RSS over idle (GiB) | idle RSS (GiB) | time (s) | × images peak |")
    print("|---|---|---|---|---|---|---|")
    image_peak = next((r["peak"] - r["idle"] for r in rows if r["path"] == "images"), None)
    for r in rows:
        over = r["peak"] - r["idle"]
        ratio = f"{over / image_peak:.3f}" if image_peak else ""
        label = ("Load Video (vae) → latents → Video Combine (latents)" if r["path"] == "latents"
                 else "Load Video → VAE Encode → … → VAE Decode → Video Combine (images)")
        print(f"| {label} | {args.frames} | {args.size}² | {over / GIB:.3f} | {r['idle'] / GIB:.2f} | "
              f"{r['seconds']:.1f} | {ratio} |")
    print()
    print(json.dumps({r["path"]: r["info"] for r in rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
