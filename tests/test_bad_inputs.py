"""The bad-input matrix (issue 7, adjusted by decisions.md "Edge inputs: work, or fail clearly").

One table, one parametrized test per row. Each row is sent through ComfyUI's HTTP prompt API, except
where no core node can produce the input (noted in the row). A row either works (and its output is
checked), is rejected at validation (HTTP 400 naming the input), or fails at execution with a message
that names the node, the input and the fix. After every failing prompt no file was added to the output
folder and the server still runs the next prompt. `tests/bad_inputs.md` is the same table for README.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import av
import numpy as np
import pytest
import safetensors.torch
import torch
from PIL import Image

from clip_helpers import write_clip
from conftest import BASE_DIR, MODELS, call_node, pack_module
from scripts import fixtures
from scripts.comfy_host import PromptFailed, PromptRejected

pytestmark = pytest.mark.host

OUTPUT = BASE_DIR / "output"
INPUT = BASE_DIR / "input"
PREFIX = "bad_inputs"
MM_DIR = MODELS / "animatediff_models"
LORA_DIR = MODELS / "animatediff_motion_lora"
README = Path(__file__).resolve().parent.parent / "README.md"
TABLE_BEGIN, TABLE_END = "<!-- troubleshooting:begin -->", "<!-- troubleshooting:end -->"
NAN, INF = float("nan"), float("inf")


@dataclass
class Ctx:
    """What a row's graph needs: the model files of this session and the broken files made for this module."""

    ckpt: str
    v1: str
    v2: str
    v3: str
    sdxl: str
    lora: str
    md_lora: str
    marker: Path
    tmp: Path


# ---- graph pieces -------------------------------------------------------------------------------------------

def _sample_graph(ctx: Ctx, frames: int = 2, module: str | None = None, lora: str | None = None,
                  context: dict | None = None, latent: dict | None = None, denoise: float = 1.0) -> dict:
    """Checkpoint → motion module (→ LoRA) → Apply (with Context Options) → KSampler → SaveLatent."""
    g = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ctx.ckpt}},
        "2": {"class_type": "AnimateFlow_LoadMotionModule", "inputs": {"model_name": module or ctx.v2}},
        "4": {"class_type": "AnimateFlow_ApplyMotionModule",
              "inputs": {"model": ["1", 0], "motion_module": ["2", 0], "motion_scale": 1.0,
                         "beta_schedule": "auto"}},
        "5": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat walking", "clip": ["1", 1]}},
        "6": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": frames}},
        "7": {"class_type": "KSampler",
              "inputs": {"model": ["4", 0], "seed": 0, "steps": 1, "cfg": 1.0, "sampler_name": "euler",
                         "scheduler": "normal", "positive": ["5", 0], "negative": ["5", 0],
                         "latent_image": ["6", 0], "denoise": denoise}},
        "8": {"class_type": "SaveLatent", "inputs": {"samples": ["7", 0], "filename_prefix": f"{PREFIX}/latent"}},
    }
    if lora is not None:
        g["3"] = {"class_type": "AnimateFlow_MotionLoRALoader",
                  "inputs": {"motion_module": ["2", 0], "lora_name": lora, "strength": 1.0}}
        g["4"]["inputs"]["motion_module"] = ["3", 0]
    if context is not None:
        g["9"] = {"class_type": "AnimateFlow_ContextOptions",
                  "inputs": {"context_length": 16, "context_stride": 1, "context_overlap": 4, "closed_loop": False,
                             "schedule": "uniform", "fuse_method": "pyramid", **context}}
        g["4"]["inputs"]["context_options"] = ["9", 0]
    if latent is not None:
        g["10"] = {"class_type": "AnimateFlow_LatentInitBlend",
                   "inputs": {"init_latent": ["6", 0], "frames": 16, "latent_power": 1.0, "latent_scale": 32.0,
                              "seed": 0, **latent}}
        g["7"]["inputs"]["latent_image"] = ["10", 0]
    return g


def _with(graph: dict, node: str, **inputs) -> dict:
    """The graph with some inputs of one node replaced."""
    graph[node]["inputs"].update(inputs)
    return graph


def _linked_float(graph: dict, node: str, name: str, value: float) -> dict:
    """The graph with a FLOAT input fed by core's Float primitive, whose own check lets NaN through."""
    graph["20"] = {"class_type": "PrimitiveFloat", "inputs": {"value": value}}
    graph[node]["inputs"][name] = ["20", 0]
    return graph


def _interpolate_graph(ctx: Ctx, fps: float) -> dict:
    return {"1": {"class_type": "EmptyImage", "inputs": {"width": 16, "height": 16, "batch_size": 2, "color": 0}},
            "2": {"class_type": "AnimateFlow_InterpolateFrames",
                  "inputs": {"images": ["1", 0], "multiplier": 2, "method": "blend", "fps": fps, "closed_loop": False}},
            "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}}}


def _blend_graph(ctx: Ctx, **blend) -> dict:
    return {
        "1": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 2}},
        "2": {"class_type": "AnimateFlow_LatentInitBlend",
              "inputs": {"init_latent": ["1", 0], "frames": 4, "latent_power": 1.0, "latent_scale": 32.0, "seed": 0,
                         **blend}},
        "3": {"class_type": "SaveLatent", "inputs": {"samples": ["2", 0], "filename_prefix": f"{PREFIX}/latent"}},
    }


def _combine_graph(ctx: Ctx, width: int = 64, height: int = 48, **combine) -> dict:
    inputs = {"images": ["1", 0], "fps": 8.0, "filename_prefix": f"{PREFIX}/vc", "save_gif": True,
              "save_mp4": True, **combine}
    return {"1": {"class_type": "EmptyImage",
                  "inputs": {"width": width, "height": height, "batch_size": 4, "color": 0x3080C0}},
            "2": {"class_type": "AnimateFlow_VideoCombine", "inputs": inputs}}


def _combine_mask_graph(ctx: Ctx, mask_size: int) -> dict:
    graph = _combine_graph(ctx, save_webm=True, save_mp4=False, save_gif=False)
    graph["3"] = {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": mask_size, "height": mask_size}}
    graph["2"]["inputs"]["mask"] = ["3", 0]
    return graph


def _load_video_graph(ctx: Ctx, path: str, **options) -> dict:
    return {"1": {"class_type": "AnimateFlow_LoadVideoPath",
                  "inputs": {"video_path": path, "frame_load_cap": 0, "skip_first_frames": 0, "select_every_nth": 1,
                             "force_rate": 0.0, "custom_width": 0, "custom_height": 0, **options}},
            "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}


def _sequence_graph(ctx: Ctx, folder: str) -> dict:
    return {"1": {"class_type": "AnimateFlow_LoadImageSequence", "inputs": {"folder": folder}},
            "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}


def _load_module_graph(name: str) -> dict:
    return {"1": {"class_type": "AnimateFlow_LoadMotionModule", "inputs": {"model_name": name}},
            "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 1]}}}


def _travel_graph(ctx: Ctx, travel_frames: int, latent_frames: int) -> dict:
    """The sample graph (no Context Options) with Prompt Travel's per-frame conditioning as the positive prompt."""
    graph = _sample_graph(ctx, frames=latent_frames)
    graph["11"] = {"class_type": "AnimateFlow_PromptTravel",
                   "inputs": {"clip": ["1", 1], "schedule": "0: a cat walking\n1: a dog running",
                              "frames": travel_frames}}
    graph["7"]["inputs"]["positive"] = ["11", 0]
    return graph


def _lora_graph(ctx: Ctx, name: str) -> dict:
    return _sample_graph(ctx, frames=2, lora=name)


# ---- checks for rows that work --------------------------------------------------------------------------------

def _latent_frames(frames: int) -> Callable[[dict, object], None]:
    def check(entry: dict, server) -> None:
        saved = entry["outputs"]["8" if "8" in entry["outputs"] else "3"]["latents"][0]
        path = OUTPUT / saved["subfolder"] / saved["filename"]
        samples = safetensors.torch.load_file(str(path))["latent_tensor"]
        assert samples.shape == (frames, 4, 8, 8)
        assert torch.isfinite(samples).all()

    return check


def _lora_report(*needles: str) -> Callable[[dict, object], None]:
    """The sample ran and Motion LoRA Loader's UI text says what it patched and skipped."""
    def check(entry: dict, server) -> None:
        _latent_frames(2)(entry, server)
        text = " ".join(entry["outputs"]["3"]["text"])
        assert all(n in text for n in needles), text

    return check


def _check_odd_mp4(entry: dict, server) -> None:
    items = {item["format"]: item for item in entry["outputs"]["2"]["animateflow"]}
    mp4 = items["video/h264-mp4"]
    local = OUTPUT / mp4["subfolder"] / mp4["filename"]
    local.write_bytes(server.view(mp4["filename"], mp4["subfolder"]))  # served as written
    with av.open(str(local)) as container:
        stream = container.streams.video[0]
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    assert len(decoded) == 4 and decoded[0].shape == (48, 64, 3)  # 63x47 padded to even
    assert np.abs(decoded[0][:47, :63].astype(int) - [0x30, 0x80, 0xC0]).mean() < 8  # picture kept, pad on the edge
    gif = items["image/gif"]
    with Image.open(OUTPUT / gif["subfolder"] / gif["filename"]) as image:
        assert image.size == (63, 47)  # GIF keeps odd sizes


# ---- in-process rows (no core node makes such an input) -------------------------------------------------------

def _combine_empty_batch(ctx: Ctx):
    call_node("AnimateFlow_VideoCombine", images=torch.zeros(0, 8, 8, 3), fps=8.0, filename_prefix=f"{PREFIX}/vc",
              save_gif=True, save_mp4=True)


# ---- the table ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    id: str
    node: str
    what: str
    expected: str
    graph: Callable[[Ctx], dict] | None = None
    outcome: str = "fails"  # fails | rejected | works | in-process
    needles: tuple[str, ...] = ()  # all must appear (case-insensitive) in the error
    check: Callable | None = None
    run: Callable[[Ctx], object] | None = None


ROWS: list[Row] = [
    Row("mm_not_safetensors", "Load Motion Module", "a text file named .safetensors",
        "error naming the file: not a safetensors file, pick a real motion module",
        lambda c: _load_module_graph("broken_text.safetensors"),
        needles=("Load Motion Module", "broken_text", "download it again")),
    Row("mm_truncated", "Load Motion Module", "a truncated .safetensors motion module",
        "error naming the file as damaged/truncated, re-download it",
        lambda c: _load_module_graph("broken_truncated.safetensors"),
        needles=("Load Motion Module", "broken_truncated", "download it again")),
    Row("mm_truncated_ckpt", "Load Motion Module", "a truncated .ckpt motion module",
        "error naming the file as damaged/truncated, re-download it",
        lambda c: _load_module_graph("broken_truncated.ckpt"),
        needles=("Load Motion Module", "broken_truncated.ckpt", "download it again")),
    Row("mm_not_motion", "Load Motion Module", "a valid .safetensors that is not a motion module",
        "error: not a motion module (names the file and the formats it knows)",
        lambda c: _load_module_graph("broken_not_motion.safetensors"),
        needles=("Load Motion Module", "broken_not_motion", "LoraLoaderModelOnly")),
    Row("mm_pickle_code", "Load Motion Module", "a .ckpt whose pickle runs code",
        "refused without running the code; use a .safetensors file",
        lambda c: _load_module_graph("broken_code.ckpt"), needles=("Load Motion Module", "broken_code", "safetensors")),
    Row("lora_not_safetensors", "Motion LoRA Loader", "a text file named .safetensors as motion LoRA",
        "error naming the file: not a safetensors file",
        lambda c: _lora_graph(c, "broken_text_lora.safetensors"),
        needles=("Motion LoRA Loader", "broken_text_lora", "download it again")),
    Row("lora_truncated", "Motion LoRA Loader", "a truncated motion LoRA",
        "error naming the file as damaged/truncated, re-download it",
        lambda c: _lora_graph(c, "broken_truncated_lora.safetensors"),
        needles=("Motion LoRA Loader", "broken_truncated_lora", "download it again")),
    Row("lora_pickle_code", "Motion LoRA Loader", "a .pt LoRA whose pickle runs code",
        "refused without running the code; use a .safetensors file",
        lambda c: _lora_graph(c, "broken_code_lora.pt"),
        needles=("Motion LoRA Loader", "broken_code_lora", "safetensors")),
    Row("sdxl_module_on_sd15", "Apply Motion Module", "an SDXL motion module on an SD1.5 checkpoint",
        "error: module does not fit the model; use an SD1.5 module with SD1.5",
        lambda c: _sample_graph(c, module=c.sdxl),
        needles=("Apply Motion Module", "SD1.5", "SDXL", "use an SD1.5 motion module with an SD1.5 checkpoint")),
    Row("lora_on_v1", "Motion LoRA Loader", "a v2 motion LoRA on a v1 module (no mid block)",
        "works: the layers v1 has are patched; the 8 mid-block layers are skipped and the node says so",
        lambda c: _sample_graph(c, module=c.v1, lora=c.lora), outcome="works",
        check=_lora_report("160 layers patched", "skipped 8 mid-block layers")),
    Row("lora_motiondirector_v3", "Motion LoRA Loader", "a MotionDirector LoRA (attention + feed-forward) on v3",
        "works: all 200 layers patched", lambda c: _sample_graph(c, module=c.v3, lora=c.md_lora), outcome="works",
        check=_lora_report("200 layers patched")),
    Row("lora_matches_nothing", "Motion LoRA Loader", "a LoRA with only mid-block layers on a v1 module",
        "error: the LoRA patches none of the module's layers; pick one trained for this kind of module",
        lambda c: _sample_graph(c, module=c.v1, lora="broken_mid_only_lora.safetensors"),
        needles=("Motion LoRA Loader", "broken_mid_only_lora", "patches none", "pick a LoRA trained for this kind")),
    Row("frames_0_empty_latent", "Empty Latent Image (core)", "batch_size 0",
        "HTTP 400 at validation naming batch_size (core minimum 1)",
        lambda c: _sample_graph(c, frames=0), outcome="rejected", needles=("batch_size",)),
    Row("frames_0_init_blend", "Latent Init Blend", "frames 0",
        "works: takes the frame count from init_latent's batch (3 here)",
        lambda c: _sample_graph(c, frames=3, latent={"frames": 0}, denoise=0.6), outcome="works",
        check=_latent_frames(3)),
    Row("frames_1", "Apply Motion Module", "a 1-frame batch", "works (one frame)",
        lambda c: _sample_graph(c, frames=1), outcome="works", check=_latent_frames(1)),
    Row("frames_2", "Apply Motion Module", "a 2-frame batch", "works (two frames)",
        lambda c: _sample_graph(c, frames=2), outcome="works", check=_latent_frames(2)),
    Row("frames_over_pe", "Apply Motion Module", "25 frames on v1 (encoding 24) without Context Options",
        "error naming the frame count and the encoding; connect Context Options to context_options",
        lambda c: _sample_graph(c, frames=25, module=c.v1),
        needles=("Apply Motion Module", "25 frames", "24", "Context Options", "context_options")),
    Row("frames_over_pe_context", "Apply Motion Module", "25 frames on v1 with Context Options (16, overlap 4)",
        "works: sampled in windows",
        lambda c: _sample_graph(c, frames=25, module=c.v1, context={}), outcome="works", check=_latent_frames(25)),
    Row("travel_frames_windowless", "Apply Motion Module",
        "Prompt Travel of 16 frames on a 24-frame latent, without Context Options",
        "error before the first step naming both counts and the fix (the host repeated frames 0-7's prompts on "
        "frames 16-23)", lambda c: _travel_graph(c, 16, 24),
        needles=("Apply Motion Module", "positive conditioning holds 16 per-frame", "24 frames",
                 "make the per-frame conditioning (a prompt schedule's frames) 24 frames long")),
    Row("travel_frames_match", "Prompt Travel", "Prompt Travel of 2 frames on a 2-frame latent, without Context "
        "Options", "works", lambda c: _travel_graph(c, 2, 2), outcome="works", check=_latent_frames(2)),
    Row("context_length_1", "Context Options", "context_length 1",
        "HTTP 400 at validation naming context_length (minimum 2)",
        lambda c: _sample_graph(c, context={"context_length": 1}), outcome="rejected", needles=("context_length",)),
    Row("context_overlap_ge_length", "Context Options", "context_overlap 8 with context_length 8",
        "error: context_overlap must be -1 or 0..context_length-1",
        lambda c: _sample_graph(c, context={"context_length": 8, "context_overlap": 8}),
        needles=("Context Options", "context_overlap", "context_length - 1")),
    Row("context_stride_0", "Context Options", "context_stride 0",
        "HTTP 400 at validation naming context_stride (minimum 1)",
        lambda c: _sample_graph(c, context={"context_stride": 0}), outcome="rejected", needles=("context_stride",)),
    Row("latent_scale_0", "Latent Init Blend", "latent_scale 0",
        "error: divides by zero; set latent_scale above 0 (default 32)",
        lambda c: _blend_graph(c, latent_scale=0.0), needles=("Latent Init Blend", "latent_scale", "above 0")),
    Row("latent_scale_nan", "Latent Init Blend", "latent_scale NaN",
        "HTTP 400 at validation: latent_scale is nan, enter a number from 0 to 10000",
        lambda c: _blend_graph(c, latent_scale=NAN), outcome="rejected",
        needles=("Latent Init Blend", "latent_scale is nan", "from 0 to 10000")),
    Row("latent_power_inf", "Latent Init Blend", "latent_power +inf",
        "HTTP 400 at validation: latent_power is inf, enter a number from 0 to 10",
        lambda c: _blend_graph(c, latent_power=INF), outcome="rejected",
        needles=("Latent Init Blend", "latent_power is inf", "enter a number from 0 to 10")),
    Row("motion_scale_nan", "Apply Motion Module", "motion_scale NaN (was an all-black video)",
        "HTTP 400 at validation: motion_scale is nan, enter a number from 0 to 10",
        lambda c: _with(_sample_graph(c), "4", motion_scale=NAN), outcome="rejected",
        needles=("Apply Motion Module", "motion_scale is nan", "from 0 to 10")),
    Row("motion_scale_linked_nan", "Apply Motion Module", "motion_scale NaN through a link (core Float node)",
        "error before sampling: motion_scale is nan (the host cannot check a linked value at validation)",
        lambda c: _linked_float(_sample_graph(c), "4", "motion_scale", NAN),
        needles=("Apply Motion Module", "motion_scale is nan", "enter a number from 0 to 10")),
    Row("lora_strength_inf", "Motion LoRA Loader", "strength -inf",
        "HTTP 400 at validation: strength is -inf, enter a number from -10 to 10",
        lambda c: _with(_sample_graph(c, lora=c.lora), "3", strength=-INF), outcome="rejected",
        needles=("Motion LoRA Loader", "strength is -inf", "enter a number from -10 to 10")),
    Row("interp_fps_nan", "Interpolate Frames", "fps NaN", "HTTP 400 at validation: fps is nan",
        lambda c: _interpolate_graph(c, NAN), outcome="rejected",
        needles=("Interpolate Frames", "fps is nan", "enter a number")),
    Row("vc_fps_nan", "Video Combine", "fps NaN", "HTTP 400 at validation: fps is nan",
        lambda c: _combine_graph(c, fps=NAN), outcome="rejected",
        needles=("Video Combine", "fps is nan", "enter a number")),
    Row("vc_empty_batch", "Video Combine", "an empty IMAGE batch (in-process: no core node makes one)",
        "error: images is an empty batch; connect a node that outputs frames",
        outcome="in-process", run=_combine_empty_batch, needles=("Video Combine", "images", "empty", "connect")),
    Row("vc_fps_0", "Video Combine", "fps 0", "HTTP 400 at validation naming fps (minimum 0.01)",
        lambda c: _combine_graph(c, fps=0.0), outcome="rejected", needles=("fps",)),
    Row("vc_fps_negative", "Video Combine", "fps -8", "HTTP 400 at validation naming fps (minimum 0.01)",
        lambda c: _combine_graph(c, fps=-8.0), outcome="rejected", needles=("fps",)),
    Row("vc_prefix_dotdot", "Video Combine", "filename_prefix '../escape/clip'",
        "error: climbs out with '..'; files stay in the output folder",
        lambda c: _combine_graph(c, filename_prefix="../escape/clip"),
        needles=("Video Combine", "filename_prefix", "..", "output folder")),
    Row("vc_prefix_absolute", "Video Combine", "filename_prefix '/tmp/escape/clip'",
        "error: absolute path; files stay in the output folder",
        lambda c: _combine_graph(c, filename_prefix="/tmp/animateflow_escape/clip"),
        needles=("Video Combine", "filename_prefix", "absolute", "output folder")),
    Row("vc_unwritable", "Video Combine", "an output subfolder that cannot be made (a file has its name)",
        "error naming filename_prefix and the folder; choose another prefix",
        lambda c: _combine_graph(c, filename_prefix="broken_file_as_dir/clip"),
        needles=("Video Combine", "filename_prefix", "broken_file_as_dir")),
    Row("vc_odd_size_mp4", "Video Combine", "63x47 frames to MP4", "works: MP4 padded to 64x48, GIF stays 63x47",
        lambda c: _combine_graph(c, width=63, height=47), outcome="works", check=_check_odd_mp4),
    Row("vc_extra_crf_range", "Video Combine", "extra_crf 60 with extra_format h265-mp4 (x265 stops at 51)",
        "error: outside H.265 MP4's range 0-51; -1 for its default",
        lambda c: _combine_graph(c, extra_format="h265-mp4", extra_crf=60),
        needles=("Video Combine", "extra_crf 60", "0-51", "-1")),
    Row("vc_mask_size", "Video Combine", "a 32x32 mask on 64x48 frames",
        "error: names both sizes; give one mask per frame (or one for all) of the frames' size",
        lambda c: _combine_mask_graph(c, 32), needles=("Video Combine", "mask", "64x48", "same size")),
    Row("lv_missing", "Load Video (Path)", "a video path that does not exist",
        "error: file not found (names video_path and the path)",
        lambda c: _load_video_graph(c, "broken_missing.mp4"), needles=("Load Video (Path)", "video_path", "not found")),
    Row("lv_empty", "Load Video (Path)", "an empty (0-byte) .mp4", "error: not a video or corrupt (names the file)",
        lambda c: _load_video_graph(c, "broken_empty.mp4"),
        needles=("Load Video (Path)", "broken_empty.mp4", "corrupt")),
    Row("lv_corrupt", "Load Video (Path)", "random bytes named .mp4", "error: not a video or corrupt (names the file)",
        lambda c: _load_video_graph(c, "broken_corrupt.mp4"),
        needles=("Load Video (Path)", "broken_corrupt.mp4", "corrupt")),
    Row("lv_playlist", "Load Video (Path)", "an HLS playlist (.m3u8) whose segment lies outside input/",
        "refused before ffmpeg opens anything it lists: only self-contained video files are read",
        lambda c: _load_video_graph(c, "broken_playlist.m3u8"),
        needles=("Load Video (Path)", "broken_playlist.m3u8", "HLS playlist", "self-contained")),
    Row("lv_nul", "Load Video (Path)", "a path containing a NUL character",
        "error: video_path contains a NUL character",
        lambda c: _load_video_graph(c, "clip\0.mp4"), needles=("Load Video (Path)", "video_path", "NUL")),
    Row("lv_too_large", "Load Video (Path)", "custom size 8192x8192 on a 200-frame clip",
        "error before decoding: the GB needed and the limit; lower frame_load_cap, select_every_nth or the size",
        lambda c: _load_video_graph(c, "broken_long.mp4", custom_width=8192, custom_height=8192),
        needles=("Load Video (Path)", "200 frames", "GB", "frame_load_cap", "custom_width")),
    Row("seq_fewer_masks", "Load Image Sequence", "image/ with 3 frames, mask/ with 2",
        "error: names the counts and asks for one mask per image",
        lambda c: _sequence_graph(c, "broken_masks"), needles=("Load Image Sequence", "folder", "mask", "3", "2")),
    Row("seq_link_outside", "Load Image Sequence", "a frame that is a link to a file outside input/",
        "error naming the link: it leads outside ComfyUI's input folder",
        lambda c: _sequence_graph(c, "broken_seq_link"),
        needles=("Load Image Sequence", "1.png", "link", "outside ComfyUI's input folder")),
    Row("vc_prefix_too_long", "Video Combine", "a 5,000-character filename_prefix",
        "error: too long, with the file system's limit; shorten it",
        lambda c: _combine_graph(c, filename_prefix="x" * 5000),
        needles=("Video Combine", "filename_prefix", "too long", "shorten")),
    Row("vc_prefix_link_outside", "Video Combine", "filename_prefix through a linked folder in output/ leading out",
        "error: resolves outside the output folder; no folder is made there",
        lambda c: _combine_graph(c, filename_prefix="broken_link_out/new/clip"),
        needles=("Video Combine", "filename_prefix", "outside the output folder")),
]


# ---- fixtures ----------------------------------------------------------------------------------------------------

class _RunsCode:
    """Pickles to a call of os.system: a loader that runs it creates the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _write_broken_files(ctx: Ctx) -> list[Path]:
    made = []

    def put(path: Path, data: bytes) -> None:
        path.write_bytes(data)
        made.append(path)

    text = b"this is not a model, just some text\n" * 4
    v2 = (MM_DIR / ctx.v2).read_bytes()
    v1 = (MM_DIR / ctx.v1).read_bytes()
    lora = (LORA_DIR / ctx.lora).read_bytes()
    put(MM_DIR / "broken_text.safetensors", text)
    put(MM_DIR / "broken_truncated.safetensors", v2[: len(v2) // 2])
    put(MM_DIR / "broken_truncated.ckpt", v1[: len(v1) // 2])
    not_motion = ctx.tmp / "not_motion.safetensors"
    safetensors.torch.save_file({"lora_unet_down_blocks_0.alpha": torch.ones(1),
                                 "model.diffusion_model.conv_in.weight": torch.zeros(4, 4, 3, 3)}, str(not_motion))
    put(MM_DIR / "broken_not_motion.safetensors", not_motion.read_bytes())
    torch.save({"state_dict": {"x": torch.zeros(2), "payload": _RunsCode(ctx.marker)}}, ctx.tmp / "code.pt")
    assert b"system" in (ctx.tmp / "code.pt").read_bytes()  # the pickle really calls os.system when unpickled
    put(MM_DIR / "broken_code.ckpt", (ctx.tmp / "code.pt").read_bytes())
    put(LORA_DIR / "broken_code_lora.pt", (ctx.tmp / "code.pt").read_bytes())
    put(LORA_DIR / "broken_text_lora.safetensors", text)
    put(LORA_DIR / "broken_truncated_lora.safetensors", lora[: len(lora) // 2])
    mid_only = ctx.tmp / "mid_only.safetensors"
    safetensors.torch.save_file({k: v for k, v in fixtures.motion_lora_state_dict(rank=4).items()
                                 if k.startswith("mid_block.")}, str(mid_only))
    put(LORA_DIR / "broken_mid_only_lora.safetensors", mid_only.read_bytes())
    put(INPUT / "broken_empty.mp4", b"")
    put(INPUT / "broken_corrupt.mp4", random.Random(7).randbytes(4096))
    put(OUTPUT / "broken_file_as_dir", b"a file where Video Combine would want a folder")
    outside = ctx.tmp / "outside"
    outside.mkdir()
    write_clip(outside / "secret.ts", [np.full((16, 16, 3), 99, np.uint8)], container_format="mpegts")
    playlist = f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\n{outside / 'secret.ts'}\n#EXT-X-ENDLIST\n"
    put(INPUT / "broken_playlist.m3u8", playlist.encode())
    write_clip(INPUT / "broken_long.mp4", [np.zeros((16, 16, 3), np.uint8)] * 200, fps=24)
    made.append(INPUT / "broken_long.mp4")
    Image.new("RGB", (16, 16), 99).save(outside / "secret.png")
    (INPUT / "broken_seq_link").mkdir(exist_ok=True)
    Image.new("RGB", (16, 16), 0).save(INPUT / "broken_seq_link" / "0.png")
    (INPUT / "broken_seq_link" / "1.png").symlink_to(outside / "secret.png")
    made.append(INPUT / "broken_seq_link")
    (outside / "linked").mkdir()
    (OUTPUT / "broken_link_out").symlink_to(outside / "linked", target_is_directory=True)
    made.append(OUTPUT / "broken_link_out")
    for sub, count in (("image", 3), ("mask", 2)):
        folder = INPUT / "broken_masks" / sub
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            Image.new("RGB" if sub == "image" else "L", (16, 16), 200).save(folder / f"{i:03}.png")
    made.append(INPUT / "broken_masks")
    return made


@pytest.fixture(scope="module")
def ctx(sd15_file, motion_module_file, motion_lora_file, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad_inputs")
    context = Ctx(ckpt=sd15_file, v1=motion_module_file("v1"), v2=motion_module_file("v2"), v3=motion_module_file("v3"),
                  sdxl=motion_module_file("sdxl"), lora=motion_lora_file,
                  md_lora=fixtures.ensure_motion_director_lora(LORA_DIR).name, marker=tmp / "code_ran", tmp=tmp)
    shutil.rmtree(OUTPUT / PREFIX, ignore_errors=True)
    made = _write_broken_files(context)
    yield context
    assert not any((context.tmp / "outside" / "linked").iterdir()), "Video Combine made something through the link"
    for path in made:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    shutil.rmtree(OUTPUT / PREFIX, ignore_errors=True)


def _output_files() -> set[str]:
    return {str(p.relative_to(OUTPUT)) for p in OUTPUT.rglob("*") if p.is_file()}


def _assert_serves_next(server) -> None:
    color = random.randrange(1 << 24)  # a new value each time, so the prompt is not served from the cache
    entry = server.run({"1": {"class_type": "EmptyImage",
                              "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": color}},
                        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}, timeout=60)
    assert entry["outputs"]["2"]["images"], "the server stopped serving prompts after a failing one"


def _assert_names(message: str, row: Row) -> None:
    lowered = message.lower()
    missing = [n for n in row.needles if n.lower() not in lowered]
    assert not missing, f"{row.id}: the error does not name {missing}: {message[:1500]}"


@pytest.mark.parametrize("row", [pytest.param(row, id=row.id) for row in ROWS])
def test_bad_input(row: Row, ctx: Ctx, server):
    before = _output_files()
    if row.outcome == "in-process":
        with pytest.raises(Exception) as raised:
            row.run(ctx)
        _assert_names(str(raised.value), row)
        assert _output_files() - before == set(), f"{row.id}: files were left in the output folder"
        return
    graph = row.graph(ctx)
    if row.outcome == "works":
        entry = server.run(graph, timeout=300)
        row.check(entry, server)
        return
    if row.outcome == "rejected":
        with pytest.raises(PromptRejected) as rejected:
            server.run(graph, timeout=60)
        message = json.dumps(rejected.value.details)
    else:
        with pytest.raises(PromptFailed) as failed:
            server.run(graph, timeout=300)
        errors = failed.value.errors
        assert errors, "the prompt failed without an execution_error message"
        message = " ".join(f"{e.get('node_type')} {e.get('exception_message')}" for e in errors)
    _assert_names(message, row)
    assert _output_files() - before == set(), f"{row.id}: files were left in the output folder"
    assert not ctx.marker.exists(), "a pickle's code ran while loading"
    assert not Path("/tmp/animateflow_escape").exists() and not (BASE_DIR / "escape").exists()
    _assert_serves_next(server)


def _float_inputs(object_info: dict) -> list[tuple[str, str, dict]]:
    """(node id, input name, options) of every FLOAT input of the pack, required and optional."""
    found = []
    for node_id, info in object_info.items():
        if not node_id.startswith("AnimateFlow_"):
            continue
        for group in ("required", "optional"):
            for name, spec in info["input"].get(group, {}).items():
                if spec[0] == "FLOAT":
                    found.append((node_id, name, spec[1] if len(spec) > 1 else {}))
    return found


def test_every_float_input_is_checked_at_queue_time(server):
    """NaN, ±inf and out-of-range values of every FLOAT input in /object_info are refused with HTTP 400 naming the
    input: a new FLOAT input without a check in `validate_inputs` (nodes/common.py) fails here."""
    floats = _float_inputs(server.object_info())
    assert {n for n, _, _ in floats} >= {"AnimateFlow_ApplyMotionModule", "AnimateFlow_LatentInitBlend",
                                         "AnimateFlow_InterpolateFrames", "AnimateFlow_VideoCombine"}
    for node_id, name, options in floats:
        bad = [(NAN, f"{name} is nan"), (INF, f"{name} is inf"), (-INF, f"{name} is -inf")]
        if "min" in options:
            bad.append((options["min"] - 1, "below its minimum"))
        if "max" in options:
            bad.append((options["max"] + 1, "above its maximum"))
        for value, needle in bad:
            graph = {"1": {"class_type": node_id, "inputs": {name: value}},
                     "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}}
            with pytest.raises(PromptRejected) as rejected:
                server.queue(graph)
            errors = rejected.value.details.get("node_errors", {}).get("1", {}).get("errors", [])
            details = " ".join(str(e.get("details")) for e in errors)
            assert needle in details and name in details, f"{node_id}.{name} = {value}: {details[:600]}"


def test_readme_troubleshooting_is_this_table():
    block = README.read_text().split(TABLE_BEGIN, 1)[1].split(TABLE_END, 1)[0]
    assert block.strip() == render_markdown().strip(), "README's troubleshooting table is stale: paste render_markdown()"


def render_markdown() -> str:
    """This table as markdown, for README's troubleshooting."""
    lines = ["| id | node | input | result |", "|---|---|---|---|"]
    lines += [f"| `{row.id}` | {row.node} | {row.what} | {row.expected} |" for row in ROWS]
    return "\n".join(lines) + "\n"


def test_linked_values_are_checked_for_finiteness_only():
    """A link may carry a value above a widget's maximum (Interpolate Frames' fps × multiplier into Video Combine):
    the host never range-checked links, so only NaN/±inf fail when the node runs."""
    import nodes

    common = pack_module("nodes.common")
    combine = nodes.NODE_CLASS_MAPPINGS["AnimateFlow_VideoCombine"]
    common.require_finite(combine, fps=480.0)
    assert "above its maximum 240" in common.validate_floats(combine, fps=480.0)
    assert common.validate_floats(combine, fps=8.0) is True
    with pytest.raises(ValueError, match=r"Video Combine: fps is nan \(not a finite number\); enter a number from "
                                         r"0\.01 to 240 \(default 8\)"):
        common.require_finite(combine, fps=NAN)
