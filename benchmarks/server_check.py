"""The GPU host check through real servers: every example renders, frames agree across hosts and VRAM modes.

    python benchmarks/server_check.py --comfy-new DIR --comfy-old DIR [--anchor ARCHIVE] [--out DIR] [--smoke]

Starts ComfyUI's own `main.py` (default GPU flags) three times on one base folder: the new host (0.33.0) as it
starts by default on NVIDIA (dynamic VRAM: comfy-aimdo, every model a ModelPatcherDynamic), the same host with
`--disable-dynamic-vram`, and the old host (0.3.75). Random-weight stand-ins of every model the examples name are
generated first (scripts/fixtures.py), with the inputs they read. In each server:
- every example workflow of example_workflows/api renders (shrunk: small frames, few steps; new host only);
- txt2vid, long_video_context and vid2vid_controlnet render at the compared settings with `fast_path` off, and
  again with the KSampler fed the checkpoint's model (no motion module); each writes its sampled latents
  (SaveLatent), which are compared across the three servers (must agree within fp16 rounding) and against the
  no-motion graph (must differ: the module ran);
- timings (new host only): s/step (CUDA-synchronised progress stamps, median after two steps) and peak memory
  (torch's peak and the device's used memory over what was used before the prompt; under dynamic VRAM weights
  live outside torch's allocator) for ours eager, ours fast (after its compiles), ours fast with live preview,
  the leading pack (ADE_AnimateDiffLoaderGen1, loaded in the same server), and 64-frame context windows with
  `max_batched_windows` 1 and 0 (auto) beside the leading pack's.
The probe that reads timings and memory is benchmarks/server_probe (copied into the server's custom_nodes).
Writes results.json and a Markdown report under --out and prints the report. --smoke runs the whole script on CPU
at tiny sizes (checks the script, measures nothing).
"""

from __future__ import annotations

import argparse
import copy
import os
import json
import logging
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from scripts import comfy_host, fixtures, long_clip, workflows  # noqa: E402

log = logging.getLogger("server-check")
EXAMPLES = REPO_ROOT / "example_workflows" / "api"
COMPARED = ("txt2vid", "long_video_context", "vid2vid_controlnet")
PROBE = Path(__file__).resolve().parent / "server_probe"
ANCHOR = "comfyui-animatediff-evolved-d8d163c.tar.gz"
GIB = 1024 ** 3
AGREE = 1e-2  # relative difference of latents that counts as fp16 rounding (fast vs eager gives ~5e-3)
MOVED = 5e-2  # the module ran: with vs without it, the latents differ by more than this


@dataclass
class Sizes:
    """What each part renders: the examples shrunk, the compared graphs, the timed graphs."""

    quick_size: int = 128
    quick_frames: int = 16
    quick_steps: int = 2
    compare_size: int = 256
    compare_steps: int = 8
    compare_long_frames: int = 48
    time_size: int = 512
    time_frames: int = 16
    time_steps: int = 20
    long_frames: int = 64
    long_steps: int = 4

    @classmethod
    def smoke(cls) -> Sizes:
        return cls(64, 4, 1, 64, 1, 20, 64, 4, 3, 20, 2)


@dataclass
class Server:
    label: str
    comfy: Path
    args: list[str]
    examples: bool
    timings: bool
    process: subprocess.Popen | None = None
    client: comfy_host.ComfyClient | None = None
    results: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)
    restart: bool = False  # the issue-27 run: a queue of three, then a restart and a first render from the cache


# ---------------------------------------------------------------- set-up


def make_models(models: Path, comfy: Path) -> None:
    """Every model the examples name, generated in a child process (ComfyUI imported with --cpu)."""
    formats = sorted({fmt for path in EXAMPLES.glob("*.json") for fmt in motion_formats(json.loads(path.read_text()))}
                     | {"v2"})
    code = ("import sys; from pathlib import Path; given = sys.argv[1:]; sys.path[:0] = given[:2]; "
            "sys.argv = [sys.argv[0], '--cpu']; import comfy.options; comfy.options.enable_args_parsing(); "
            "from scripts import fixtures as f; m = Path(given[2]); f.ensure_sd15_checkpoint(m / 'checkpoints'); "
            "f.ensure_controlnet(m / 'controlnet'); f.ensure_motion_lora(m / 'animatediff_motion_lora'); "
            "[f.ensure_motion_module(m / 'animatediff_models', x) for x in given[3:]]")
    subprocess.run([sys.executable, "-c", code, str(REPO_ROOT), str(comfy.resolve()), str(models.resolve()),
                    *formats], check=True, cwd=comfy)


def motion_formats(api: dict) -> list[str]:
    by_file = {name: fmt for fmt, name in fixtures.MOTION_MODULE_FILES.items()}
    return [by_file[n["inputs"]["model_name"]] for n in api.values()
            if n["class_type"] == "AnimateFlow_LoadMotionModule"]


def make_inputs(inputs: Path, frames: int = 24) -> None:
    """The files the examples read: a start picture, a short video (scripts/long_clip.py's clip; no sound track,
    which the vid2vid example's Video Combine then leaves out), an inpainting folder of frames and masks."""
    from PIL import Image, ImageDraw

    long_clip.make_clip(inputs / "vid2vid_source.mp4", frames, 96)
    folder = inputs / "inpaint_clip"
    for sub in ("image", "mask"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for i in range(6):
        picture = Image.linear_gradient("L").resize((96, 96)).convert("RGB")
        ImageDraw.Draw(picture).ellipse((10 + 8 * i, 30, 40 + 8 * i, 60), fill=(240, 240, 240))
        picture.save(folder / "image" / f"frame{i}.png")
        mask = Image.new("L", (96, 96))
        ImageDraw.Draw(mask).rectangle((10 + 5 * i, 20, 60 + 5 * i, 70), fill=255)
        mask.save(folder / "mask" / f"frame{i}.png")
        if i == 3:
            picture.save(inputs / "img2vid_start.png")


def install_custom_nodes(base: Path, anchor: Path | None) -> None:
    """The probe (a copy, so prepare_base's link clean-up leaves it) and the leading pack beside ours."""
    nodes = base / "custom_nodes"
    shutil.rmtree(nodes / "animateflow_bench_probe", ignore_errors=True)
    shutil.copytree(PROBE, nodes / "animateflow_bench_probe", ignore=shutil.ignore_patterns("__pycache__"))
    if anchor is not None and not (nodes / "ComfyUI-AnimateDiff-Evolved").exists():
        with tarfile.open(anchor) as archive:
            archive.extractall(nodes, filter="data")


def start(server: Server, base: Path, cpu: bool, log_dir: Path) -> None:
    port = comfy_host.free_port()
    front_end = None
    try:
        import comfyui_frontend_package  # noqa: F401
    except ImportError:
        front_end = Path(tempfile.mkdtemp(prefix="no-editor-"))  # the prompt API needs no editor
    cmd = [sys.executable, "main.py", *(["--cpu"] if cpu else []), *server.args, "--listen", "127.0.0.1", "--port",
           str(port), "--base-directory", str(base), "--database-url", "sqlite:///:memory:"]
    if front_end is not None:
        cmd += ["--front-end-root", str(front_end)]
    log_file = open(log_dir / f"server-{slug(server.label)}.log", "ab")
    server.process = subprocess.Popen(cmd, cwd=server.comfy, stdout=log_file, stderr=subprocess.STDOUT,
                                      env={**os.environ, **server.env})
    server.client = comfy_host.ComfyClient(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.label}: ComfyUI exited with {server.process.returncode}")
        try:
            server.client.request("/system_stats", timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{server.label}: ComfyUI did not answer")


def stop(server: Server) -> None:
    if server.process is not None and server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


def slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text).strip("-")


# ---------------------------------------------------------------- graphs


def load(name: str) -> dict:
    return workflows.strip_meta(json.loads((EXAMPLES / f"{name}.json").read_text()))


def nodes_of(graph: dict, class_type: str) -> list[dict]:
    return [n for n in graph.values() if n["class_type"] == class_type]


def resize(graph: dict, size: int, frames: int | None, steps: int) -> dict:
    """Frame size, frame count and steps of a graph; every output video a GIF (the GPU machine has no ffmpeg)."""
    for node in graph.values():
        inputs, kind = node["inputs"], node["class_type"]
        if kind == "EmptyLatentImage":
            inputs.update(width=size, height=size, batch_size=frames or inputs["batch_size"])
        elif kind == "AnimateFlow_PromptTravel" and frames:
            inputs["frames"] = frames
        elif kind == "AnimateFlow_LatentInitBlend" and frames:
            inputs["frames"] = min(inputs["frames"], frames)
        elif kind == "AnimateFlow_LoadVideo":
            inputs.update(custom_width=size, custom_height=size, frame_load_cap=frames or inputs["frame_load_cap"])
        elif kind == "ImageScale":
            inputs.update(width=size, height=size)
        elif kind in ("KSampler", "KSamplerAdvanced"):
            inputs["steps"] = steps
        elif kind == "AnimateFlow_FreeInit":
            inputs["iterations"] = min(inputs["iterations"], 2)
        elif kind == "AnimateFlow_VideoCombine":
            inputs.update(save_mp4=False, save_gif=True)
    return graph


def save_latents(graph: dict, prefix: str) -> dict:
    """A SaveLatent on the KSampler's output, so the sampled latents can be compared across servers."""
    sampler = next(i for i, n in graph.items() if n["class_type"] in ("KSampler", "KSamplerAdvanced"))
    graph["900"] = {"class_type": "SaveLatent", "inputs": {"samples": [sampler, 0], "filename_prefix": prefix}}
    return graph


def ours(graph: dict, **apply_inputs) -> dict:
    for node in nodes_of(graph, "AnimateFlow_ApplyMotionModule"):
        node["inputs"].update(apply_inputs)
    return graph


def without_motion(graph: dict) -> dict:
    """The same graph with the KSampler fed what Apply Motion Module was fed (the checkpoint's model)."""
    apply_id = next(i for i, n in graph.items() if n["class_type"] == "AnimateFlow_ApplyMotionModule")
    source = graph[apply_id]["inputs"]["model"]
    for node in graph.values():
        for key, value in node["inputs"].items():
            if value == [apply_id, 0]:
                node["inputs"][key] = source
    return graph


def leading_pack(graph: dict, context: dict | None = None) -> dict:
    """Our Load + Apply replaced by the leading pack's Gen1 loader on the same file (and its uniform windows)."""
    apply_id = next(i for i, n in graph.items() if n["class_type"] == "AnimateFlow_ApplyMotionModule")
    apply = graph[apply_id]["inputs"]
    load_id = apply["motion_module"][0]
    inputs = {"model": apply["model"], "model_name": graph[load_id]["inputs"]["model_name"],
              "beta_schedule": "autoselect"}
    if context is not None:
        graph["901"] = {"class_type": "ADE_StandardUniformContextOptions", "inputs": context}
        inputs["context_options"] = ["901", 0]
    graph[apply_id] = {"class_type": "ADE_AnimateDiffLoaderGen1", "inputs": inputs}
    del graph[load_id]
    for node_id in [i for i, n in graph.items() if n["class_type"] == "AnimateFlow_ContextOptions"]:
        del graph[node_id]
    return graph


# ---------------------------------------------------------------- measuring


def render(server: Server, graph: dict, timeout: float = 600) -> dict:
    """One prompt: its wall time, the sampler's s/step, the memory it took, or its error."""
    client = server.client
    client.request("/animateflow_bench/reset", {})
    started = time.perf_counter()
    result: dict = {}
    try:
        entry = client.run(graph, timeout=timeout)
        result["ok"] = True
        result["outputs"] = entry.get("outputs", {})
    except comfy_host.PromptFailed as error:
        result.update(ok=False, error=str(error)[:3000])
    except comfy_host.PromptRejected as error:
        result.update(ok=False, error="rejected: " + str(error)[:3000])
    result["wall"] = time.perf_counter() - started
    stats = client.request("/animateflow_bench/stats")
    stamps = stats.pop("stamps")
    steps = [b - a for a, b in zip(stamps, stamps[1:])]
    timed = steps[2:] if len(steps) > 4 else steps
    result["s_per_step"] = statistics.median(timed) if timed else None
    result["steps_seen"] = len(stamps)
    result.update(stats)
    return result


def latent_file(base: Path, prefix: str) -> str:
    """The newest latent file SaveLatent wrote under this prefix, relative to the output folder ('' if none)."""
    found = sorted((base / "output").glob(prefix + "*.latent"))
    return str(found[-1].relative_to(base / "output")) if found else ""


_LATENT_ROOT: list[Path] = []  # where relative latent paths resolve: the run's output folder, or a fetched copy


def read_latent(path: str):
    import safetensors.torch

    return safetensors.torch.load_file(str(_LATENT_ROOT[0] / path))["latent_tensor"].double()


def finite_latent(path: str) -> bool | None:
    import torch

    return bool(torch.isfinite(read_latent(path)).all()) if path else None


def compare_graphs(sizes: Sizes) -> dict[str, dict]:
    """The three compared examples at the compared settings (fast path off, live preview off)."""
    s = sizes
    graphs = {
        "txt2vid": resize(load("txt2vid"), s.compare_size, s.time_frames, s.compare_steps),
        "long_video_context": resize(load("long_video_context"), s.compare_size, s.compare_long_frames,
                                     s.compare_steps),
        "vid2vid_controlnet": resize(load("vid2vid_controlnet"), s.compare_size, s.time_frames, s.compare_steps),
    }
    return {name: ours(graph, fast_path="off", live_preview=False) for name, graph in graphs.items()}


def run_examples(server: Server, sizes: Sizes, base: Path) -> None:
    """Every example with its own settings (fast path and live preview as the node defaults), shrunk. Run after the
    timings: the fast path's compiles for these shapes then never hold up a timed render."""
    rows = server.results.setdefault("examples", {})
    for path in sorted(EXAMPLES.glob("*.json")):
        graph = resize(workflows.strip_meta(json.loads(path.read_text())), sizes.quick_size, None,
                       sizes.quick_steps)
        for node in nodes_of(graph, "EmptyLatentImage"):
            node["inputs"]["batch_size"] = min(node["inputs"]["batch_size"], sizes.quick_frames)
        for node in nodes_of(graph, "AnimateFlow_PromptTravel"):
            node["inputs"]["frames"] = min(node["inputs"]["frames"], sizes.quick_frames)
        for node in nodes_of(graph, "AnimateFlow_LoadVideo"):
            node["inputs"]["frame_load_cap"] = min(node["inputs"]["frame_load_cap"] or sizes.quick_frames,
                                                   sizes.quick_frames)
        prefix = f"check/{slug(server.label)}/examples/{path.stem}"
        save_latents(graph, prefix)
        result = render(server, graph)
        result.pop("outputs", None)
        result["latent"] = latent_file(base, prefix)
        result["finite"] = finite_latent(result["latent"])
        rows[path.stem] = result
        log.info("%s: example %s %s in %.1f s", server.label, path.stem, "ok" if result["ok"] else "FAILED",
                 result["wall"])


def run_compares(server: Server, sizes: Sizes, base: Path) -> None:
    rows = server.results.setdefault("compare", {})
    for name, graph in compare_graphs(sizes).items():
        for variant, g in (("motion", copy.deepcopy(graph)), ("no motion", without_motion(copy.deepcopy(graph)))):
            prefix = f"check/{slug(server.label)}/compare/{name}-{slug(variant)}"
            result = render(server, save_latents(g, prefix))
            result.pop("outputs", None)
            result["latent"] = latent_file(base, prefix)
            rows[f"{name} / {variant}"] = result
            log.info("%s: %s (%s) %s, %.1f s", server.label, name, variant, "ok" if result["ok"] else "FAILED",
                     result["wall"])


def drain(server: Server) -> float:
    return server.client.request("/animateflow_bench/drain", {}, timeout=600)["seconds"]


def run_queue_and_restart(server: Server, sizes: Sizes, base: Path, cpu: bool, log_dir: Path) -> None:
    """Issue 27's user view, with the compile cache on: three renders queued back to back on a freshly applied
    model (node defaults: fast path auto, live preview on; no idle time, so the compiles run only where the
    renders leave room), then a restart and the same model's first render, which should find its shapes saved."""
    rows = server.results.setdefault("timings", {})
    txt = latents_only(resize(load("txt2vid"), sizes.time_size, sizes.time_frames, sizes.time_steps))
    lead = leading_pack(copy.deepcopy(txt))

    def timed(label: str, graph: dict) -> None:
        save_latents(graph, f"check/{slug(server.label)}/warm/{slug(label)}")
        result = render(server, graph)
        result.pop("outputs", None)
        rows[label] = result
        log.info("%s: %-40s wall %.2f s, %s s/step", server.label, label, result["wall"],
                 f"{result['s_per_step']:.4f}" if result["s_per_step"] else "-")

    timed("leading pack (warm-up)", reseed(copy.deepcopy(lead), 1, 4))
    for i in range(3):
        timed(f"leading pack, queue render {i + 1}", reseed(copy.deepcopy(lead), 101 + i))
    for i in range(3):
        timed(f"ours (node defaults), queue render {i + 1}", reseed(copy.deepcopy(txt), 101 + i))
    rows["ours: compiles left after the queue, s"] = drain(server)
    stop(server)
    start(server, base, cpu, log_dir)
    timed("after a restart: ours, first render", reseed(copy.deepcopy(txt), 104))
    rows["after a restart: compiles left after the first render, s"] = drain(server)
    timed("after a restart: ours, second render", reseed(copy.deepcopy(txt), 105))


def reseed(graph: dict, seed: int, steps: int | None = None) -> dict:
    """Another seed (and step count) on the sampler only: ComfyUI re-runs the sampler and what follows it, while
    the nodes before it (Apply Motion Module, so its fast path and compiled shapes) stay cached."""
    for node in nodes_of(graph, "KSampler"):
        node["inputs"]["seed"] = seed
        if steps:
            node["inputs"]["steps"] = steps
    return graph


def latents_only(graph: dict) -> dict:
    """The graph without its VAE decode and video output (the timed part is the sampler; SaveLatent is the output)."""
    for node_id in [i for i, n in graph.items() if n["class_type"] in ("VAEDecode", "AnimateFlow_VideoCombine")]:
        del graph[node_id]
    return graph


def run_timings(server: Server, sizes: Sizes, base: Path) -> None:
    """Warm-ups and first renders on seed 1, timed renders on seed 42 (the same for every variant, so their latents
    compare); the fast path is timed after its compiles (drain). Graphs end at SaveLatent (no VAE decode)."""
    s = sizes
    rows = server.results.setdefault("timings", {})
    txt = latents_only(resize(load("txt2vid"), s.time_size, s.time_frames, s.time_steps))

    def timed(label: str, graph: dict, prefix: str | None = None) -> dict:
        folder = "timed" if prefix else "warm"
        prefix = f"check/{slug(server.label)}/{folder}/{prefix or slug(label)}"
        save_latents(graph, prefix)
        result = render(server, graph)
        result.pop("outputs", None)
        if folder == "timed":
            result["latent"] = latent_file(base, prefix)
        rows[label] = result
        log.info("%s: %-44s %s s/step %s, sampling: device peak %.2f GiB, torch peak %.2f GiB, %s", server.label,
                 label, f"{result['s_per_step']:.4f}" if result["s_per_step"] else "-",
                 "" if result["ok"] else "FAILED", result["device_peak_used"] / GIB,
                 result["torch_peak_allocated"] / GIB, result["loaded_patchers"])
        return result

    def variant(label: str, graph: dict, prefix: str, compile_first: bool = False, steps: int | None = 4) -> None:
        timed(f"{label} (first render)" if compile_first else f"{label} (warm-up)",
              reseed(copy.deepcopy(graph), 1, steps))
        if compile_first:
            rows[f"{label}: compile wait s"] = drain(server)
        timed(label, reseed(copy.deepcopy(graph), 42), prefix)

    variant("ours eager", ours(copy.deepcopy(txt), fast_path="off", live_preview=False), "eager")
    variant("leading pack", leading_pack(copy.deepcopy(txt)), "leading")
    variant("ours fast", ours(copy.deepcopy(txt), fast_path="auto", live_preview=False), "fast", compile_first=True,
            steps=None)
    timed("ours eager + live preview", reseed(ours(copy.deepcopy(txt), fast_path="off", live_preview=True), 42),
          "eager-live")

    long = latents_only(resize(load("long_video_context"), s.time_size, s.long_frames, s.long_steps))
    context = {}
    for node in nodes_of(long, "AnimateFlow_ContextOptions"):
        context = {k: node["inputs"][k] for k in ("context_length", "context_stride", "context_overlap")}
    f = s.long_frames
    timed(f"leading pack, {f} f windows", reseed(leading_pack(copy.deepcopy(long), context), 42), "leading-long")
    for batched in (1, 0):
        graph = ours(copy.deepcopy(long), fast_path="off", live_preview=False)
        for node in nodes_of(graph, "AnimateFlow_ContextOptions"):
            node["inputs"]["max_batched_windows"] = batched
        timed(f"ours eager, {f} f windows, max_batched_windows={batched}", reseed(graph, 42), f"eager-long-{batched}")
    graph = ours(copy.deepcopy(long), fast_path="auto", live_preview=False)
    variant(f"ours fast, {f} f windows, max_batched_windows=1", graph, "fast-long-1", compile_first=True, steps=2)
    small = latents_only(resize(load("long_video_context"), s.compare_size, s.long_frames, s.long_steps))
    for batched in (1, 0):  # where auto batching does batch: it must not raise the peak past its 3% allowance
        graph = ours(copy.deepcopy(small), fast_path="off", live_preview=False)
        for node in nodes_of(graph, "AnimateFlow_ContextOptions"):
            node["inputs"]["max_batched_windows"] = batched
        timed(f"ours eager, {f} f {s.compare_size}² windows, max_batched_windows={batched}", reseed(graph, 42),
              f"eager-small-long-{batched}")


# ---------------------------------------------------------------- report


def relative(a, b) -> float:
    if a.shape != b.shape:
        return float("nan")
    return float((a - b).norm() / b.norm())


def agreement(servers: list[Server]) -> list[str]:
    import torch

    lines = ["| example | servers compared | relative difference | max abs | verdict |", "|---|---|---|---|---|"]
    servers = [s for s in servers if s.results.get("compare") or s.timings]
    if not servers:
        return lines
    reference = servers[0]
    for name in COMPARED:
        key = f"{name} / motion"
        ref_path = reference.results.get("compare", {}).get(key, {}).get("latent")
        if not ref_path:
            lines.append(f"| {name} | {reference.label} | no latents | | FAIL |")
            continue
        ref = read_latent(ref_path)
        finite = bool(torch.isfinite(ref).all())
        for other in servers[1:]:
            path = other.results.get("compare", {}).get(key, {}).get("latent")
            if not path:
                lines.append(f"| {name} | {other.label} vs {reference.label} | no latents | | FAIL |")
                continue
            lat = read_latent(path)
            rel = relative(lat, ref)
            verdict = "PASS" if rel <= AGREE and finite and bool(torch.isfinite(lat).all()) else "FAIL"
            lines.append(f"| {name} | {other.label} vs {reference.label} | {rel:.2e} | "
                         f"{float((lat - ref).abs().max()):.3g} | {verdict} |")
        still_ref = reference.results.get("compare", {}).get(f"{name} / no motion", {}).get("latent")
        for other in servers[1:]:
            still = other.results.get("compare", {}).get(f"{name} / no motion", {}).get("latent")
            if still and still_ref:
                a, b = read_latent(still), read_latent(still_ref)
                lines.append(f"| {name}, no motion module | {other.label} vs {reference.label} | {relative(a, b):.2e} "
                             f"| {float((a - b).abs().max()):.3g} | {'PASS' if relative(a, b) <= AGREE else 'FAIL'} |")
        for server in servers:
            still = server.results.get("compare", {}).get(f"{name} / no motion", {}).get("latent")
            moving = server.results.get("compare", {}).get(key, {}).get("latent")
            if still and moving:
                rel = relative(read_latent(moving), read_latent(still))
                lines.append(f"| {name} | with vs without the motion module, {server.label} | {rel:.2e} | | "
                             f"{'PASS' if rel > MOVED else 'FAIL'} (must differ) |")
    timed = [(s.label, s.results.get("timings", {})) for s in servers if s.timings]
    for label, rows in timed:
        eager, fast, lead = (rows.get(k, {}).get("latent") for k in ("ours eager", "ours fast", "leading pack"))
        if eager and fast:
            rel = relative(read_latent(fast), read_latent(eager))
            lines.append(f"| txt2vid timed | ours fast vs ours eager, {label} | {rel:.2e} | | "
                         f"{'PASS' if rel <= AGREE else 'FAIL'} |")
        pairs = (("eager", "leading", "ours eager vs the leading pack", None),
                 ("eager-long-1", "leading-long", "ours eager vs the leading pack, windows", None),
                 ("eager-long-0", "eager-long-1", "windows: max_batched_windows 0 (auto) vs 1", AGREE),
                 ("eager-small-long-0", "eager-small-long-1", "windows at the compared size: auto vs 1", AGREE),
                 ("fast-long-1", "eager-long-1", "windows: ours fast vs ours eager", AGREE),
                 ("eager-live", "eager", "live preview on vs off (eager)", None))
        by_prefix = {Path(r["latent"]).parent.name + "/" + Path(r["latent"]).name.rsplit("_", 2)[0]: r["latent"]
                     for r in rows.values() if isinstance(r, dict) and r.get("latent")}
        for left, right, what, tolerance in pairs:
            a_path, b_path = by_prefix.get(f"timed/{left}"), by_prefix.get(f"timed/{right}")
            if a_path and b_path:
                a, b = read_latent(a_path), read_latent(b_path)
                verdict = ("same bits" if float((a - b).abs().max()) == 0 else "differ") if tolerance is None else \
                    ("PASS" if relative(a, b) <= tolerance else "FAIL")
                lines.append(f"| timed | {what}, {label} | {relative(a, b):.2e} | {float((a - b).abs().max()):.3g} | "
                             f"{verdict} |")
    return lines


def report(servers: list[Server], sizes: Sizes, about: str) -> str:
    s = sizes
    out = [f"# Server check: {about}", "",
           f"Examples shrunk to {s.quick_size}², ≤ {s.quick_frames} frames, {s.quick_steps} steps; compared graphs "
           f"at {s.compare_size}², {s.compare_steps} steps (txt2vid and vid2vid {s.time_frames} frames, "
           f"long_video_context {s.compare_long_frames}), fast path off; timings txt2vid {s.time_frames} f "
           f"{s.time_size}² {s.time_steps} steps, context {s.long_frames} f {s.time_size}² {s.long_steps} steps.", ""]
    out.append("## Every example renders")
    out.append("| example | " + " | ".join(sv.label for sv in servers if sv.examples) + " |")
    out.append("|---|" + "---|" * sum(sv.examples for sv in servers))
    names = sorted(p.stem for p in EXAMPLES.glob("*.json"))
    for name in names:
        cells = []
        for sv in servers:
            if not sv.examples:
                continue
            r = sv.results.get("examples", {}).get(name)
            cells.append("not run" if r is None else (
                f"ok {r['wall']:.1f} s{'' if r.get('finite') else ', NOT FINITE'}" if r["ok"] else
                "FAILED: " + r["error"][:160].replace("\n", " ")))
        out.append(f"| {name} | " + " | ".join(cells) + " |")
    out += ["", "## Frames agree", *agreement(servers), ""]
    out.append("## Timings and memory")
    out.append("| server | case | s/step | ÷ leading pack | wall s | sampling: device peak used GiB | torch peak GiB | "
               "patchers loaded | ok |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    for sv in servers:
        rows = sv.results.get("timings", {})
        lead = rows.get("leading pack", {}).get("s_per_step")
        lead_long = next((r.get("s_per_step") for k, r in rows.items() if k.startswith("leading pack, ")
                          and isinstance(r, dict)), None)
        for case, r in rows.items():
            if not isinstance(r, dict):
                out.append(f"| {sv.label} | {case} | {r:.1f} | | | | | | |")
                continue
            base = lead_long if "windows" in case else lead
            if "queue render" in case or case.startswith("after a restart"):
                base = (rows.get(f"leading pack, queue render {case[-1]}") or {}).get("s_per_step") \
                    if "queue render" in case else (rows.get("leading pack, queue render 3") or {}).get("s_per_step")
            ratio = f"{r['s_per_step'] / base:.2f}×" if r.get("s_per_step") and base else ""
            sps = f"{r['s_per_step']:.4f}" if r.get("s_per_step") else ""
            out.append(f"| {sv.label} | {case} | {sps} | {ratio} | {r['wall']:.1f} | "
                       f"{r['device_peak_used'] / GIB:.2f} | {r['torch_peak_allocated'] / GIB:.2f} | "
                       f"{', '.join(sorted(set(r['loaded_patchers'])))} | "
                       f"{'ok' if r['ok'] else 'FAILED: ' + r['error'][:200].replace(chr(10), ' ')} |")
    failures = [f"{sv.label}: {name}: {r['error'][:600]}" for sv in servers for part in ("examples", "compare", "timings")
                for name, r in sv.results.get(part, {}).items() if isinstance(r, dict) and not r["ok"]]
    failures += [f"{sv.label} stopped: {sv.results['crash'][-1500:]}" for sv in servers if "crash" in sv.results]
    if failures:
        out += ["", "## Failures", *failures]
    return "\n".join(out)


def export_latents(base: Path, out: Path) -> None:
    """The latents this run saved, in one archive beside results.json (the report can be rebuilt from both); the
    long timed videos stay out (4 MiB each at 64 frames 512²: the device returns at most 16 MiB a file)."""
    with tarfile.open(out / "latents.tar", "w") as archive:
        for path in sorted((base / "output" / "check").rglob("*.latent")):
            if "-long" not in path.name and "/warm/" not in path.as_posix():
                archive.add(path, arcname=str(path.relative_to(base / "output")))


def servers_from(folders: list[Path]) -> list[Server]:
    """The servers of earlier runs (each folder: results.json, latents.tar), for one report across device calls."""
    servers = []
    root = Path(tempfile.mkdtemp(prefix="animateflow-server-check-latents-"))
    for folder in folders:
        with tarfile.open(folder / "latents.tar") as archive:
            archive.extractall(root, filter="data")
        meta = json.loads((folder / "results.json").read_text())
        for label, results in meta["servers"].items():
            server = Server(label, Path(), [], bool(results.get("examples")), bool(results.get("timings")))
            server.results = results
            servers.append(server)
    _LATENT_ROOT[:] = [root]
    return servers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comfy-new", type=Path, help="the newest host's tree (0.33.0)")
    parser.add_argument("--comfy-old", type=Path, help="the oldest host's tree (0.3.75)")
    parser.add_argument("--anchor", type=Path, help=f"the leading pack's source archive ({ANCHOR})")
    parser.add_argument("--base", type=Path, help="ComfyUI base folder (default: a new temporary one)")
    parser.add_argument("--out", type=Path, default=Path("server-check"))
    parser.add_argument("--servers", default="dynamic,static,old",
                        help="which servers, in order: dynamic (new host, default flags), static (new host, "
                             "--disable-dynamic-vram), old (the oldest host), cache (new host with the compile "
                             "cache on: a queue of three renders, a restart, a first render); NAME:compare runs only "
                             "the compared graphs there")
    parser.add_argument("--skip", default="", help="comma-separated: examples, timings")
    parser.add_argument("--compare-size", type=int, help="frame size of the compared graphs (default 256)")
    parser.add_argument("--compare-steps", type=int, help="steps of the compared graphs (default 8)")
    parser.add_argument("--report", type=Path, nargs="+", metavar="DIR",
                        help="only print the report of earlier runs' output folders (results.json + latents.tar)")
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny sizes: checks the script, measures nothing")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="[server-check] %(message)s")
    sizes = Sizes.smoke() if args.smoke else Sizes()
    sizes.compare_size = args.compare_size or sizes.compare_size
    sizes.compare_steps = args.compare_steps or sizes.compare_steps
    if args.report:
        servers = servers_from(args.report)
        abouts = [json.loads((f / "results.json").read_text())["about"] for f in args.report]
        print(report(servers, sizes, "; ".join(abouts)))
        return 0
    skip = set(filter(None, args.skip.split(",")))
    started = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    base = comfy_host.prepare_base(args.base.resolve() if args.base else
                                   Path(tempfile.mkdtemp(prefix="animateflow-server-check-")))
    _LATENT_ROOT[:] = [base / "output"]
    make_models(base / "models", args.comfy_new or args.comfy_old)
    make_inputs(base / "input")
    anchor = args.anchor or next((p for p in (REPO_ROOT.parent / "anchors" / ANCHOR,
                                              REPO_ROOT.parent / "shared" / "anchors" / ANCHOR) if p.exists()), None)
    install_custom_nodes(base, anchor)
    known = {"dynamic": ("0.33 dynamic VRAM", args.comfy_new, [], True),
             "static": ("0.33 --disable-dynamic-vram", args.comfy_new, ["--disable-dynamic-vram"], True),
             "old": ("0.3.75", args.comfy_old, [], False),
             "cache": ("0.33 dynamic VRAM, compile cache on", args.comfy_new, [], False)}
    servers = []
    for spec in args.servers.split(","):
        name, _, only = spec.partition(":")
        label, comfy, flags, new = known[name]
        full = new and only != "compare"
        if comfy:
            servers.append(Server(label, comfy, flags, full and "examples" not in skip, full and "timings" not in skip,
                                  env={"ANIMATEFLOW_COMPILE_CACHE": "1"} if name == "cache" else {},
                                  restart=name == "cache"))
    log.info("set-up done in %.0f s", time.perf_counter() - started)
    import torch

    def about() -> str:
        return (f"{torch.cuda.get_device_name() if torch.cuda.is_available() else 'CPU'}, torch {torch.__version__}, "
                f"{time.perf_counter() - started:.0f} s")

    for server in servers:
        try:
            start(server, base, args.smoke, args.out)
            server.results["system"] = server.client.request("/system_stats").get("system", {})
            if server.restart:
                run_queue_and_restart(server, sizes, base, args.smoke, args.out)
                continue
            run_compares(server, sizes, base)
            if server.timings:
                run_timings(server, sizes, base)
            if server.examples:
                run_examples(server, sizes, base)
        except Exception:
            server.results["crash"] = traceback.format_exc()
            log.error("%s: %s", server.label, server.results["crash"])
        finally:
            stop(server)
            (args.out / "results.json").write_text(json.dumps(
                {"about": about(), "servers": {s.label: s.results for s in servers}}, indent=1, default=str))
        log.info("%s done at %.0f s", server.label, time.perf_counter() - started)
    if (base / "output" / "check").exists():
        export_latents(base, args.out)
    text = report(servers, sizes, about())
    (args.out / "report.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
