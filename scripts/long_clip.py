"""Long-clip vid2vid in the prompt API's format, through latents or through IMAGE batches, and a clip to feed it.

Shared by the long-clip memory benchmark and the memory test so both measure the same two workflows:
- latents: Load Video (vae) → [KSampler] → Video Combine (latents + vae): frames never held whole;
- images:  Load Video → VAE Encode → [KSampler] → VAE Decode → Video Combine (images), what users wire today.
Without sampling settings the KSampler is left out: a VAE round trip that isolates the video nodes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from scripts import fixtures

MOTION_MODULE = "mm_sd_v15_v2.safetensors"


def make_clip(path: Path, frames: int, size: int, fps: int = 8) -> Path:
    """An H.264 clip of a bright disc circling over a gradient (cheap to encode, something for the VAE to see)."""
    if path.exists():
        return path
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    background = np.stack([x, y, np.full_like(x, 0.3)], -1) * 160
    partial = path.with_name(path.name + ".partial.mp4")
    with av.open(str(partial), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "23"}
        for i in range(frames):
            cx, cy = 0.5 + 0.3 * math.cos(i / 10), 0.5 + 0.3 * math.sin(i / 10)
            img = background.copy()
            img[(x - cx) ** 2 + (y - cy) ** 2 < 0.01] = 240
            container.mux(stream.encode(av.VideoFrame.from_ndarray(img.astype(np.uint8), format="rgb24")))
        container.mux(stream.encode())
    partial.rename(path)
    return path


@dataclass(frozen=True)
class Sampling:
    """KSampler settings; the model is AnimateDiff v2 with uniform context windows."""

    steps: int = 1
    cfg: float = 1.0
    denoise: float = 0.6
    context_length: int = 16
    context_overlap: int = 4


FORMATS = ("mp4", "gif", "webm", "png")


def vid2vid(video: str, path: str, prefix: str, sampling: Sampling | None = None, fmt: str = "mp4") -> dict:
    """The workflow for `path` ("latents" or "images") reading `video` from the input folder, writing `fmt`."""
    if path not in ("latents", "images"):
        raise ValueError(f"path must be 'latents' or 'images', not {path!r}")
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)}, not {fmt!r}")
    vae = ["ckpt", 2]
    load = {"video": video, "frame_load_cap": 0, "skip_first_frames": 0, "select_every_nth": 1,
            "force_rate": 0.0, "custom_width": 0, "custom_height": 0}
    graph: dict = {"ckpt": {"class_type": "CheckpointLoaderSimple",
                            "inputs": {"ckpt_name": fixtures.SD15_CHECKPOINT}}}
    if path == "latents":
        graph["load"] = {"class_type": "AnimateFlow_LoadVideo", "inputs": {**load, "vae": vae}}
        latent = ["load", 4]
    else:
        graph["load"] = {"class_type": "AnimateFlow_LoadVideo", "inputs": load}
        graph["encode"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["load", 0], "vae": vae}}
        latent = ["encode", 0]
    if sampling is not None:
        graph.update(_sampler(latent, sampling))
        latent = ["sample", 0]
    combine = {"fps": ["load", 2], "filename_prefix": prefix, "preset": "ultrafast",
               **{f"save_{name}": name == fmt for name in FORMATS}}
    if path == "latents":
        combine.update(latents=latent, vae=vae)
    else:
        graph["decode"] = {"class_type": "VAEDecode", "inputs": {"samples": latent, "vae": vae}}
        combine["images"] = ["decode", 0]
    graph["combine"] = {"class_type": "AnimateFlow_VideoCombine", "inputs": combine}
    return graph


def _sampler(latent: list, s: Sampling) -> dict:
    return {
        "mm": {"class_type": "AnimateFlow_LoadMotionModule", "inputs": {"model_name": MOTION_MODULE}},
        "ctx": {"class_type": "AnimateFlow_ContextOptions", "inputs": {
            "context_length": s.context_length, "context_stride": 1, "context_overlap": s.context_overlap,
            "closed_loop": False, "schedule": "uniform", "fuse_method": "pyramid"}},
        "apply": {"class_type": "AnimateFlow_ApplyMotionModule", "inputs": {
            "model": ["ckpt", 0], "motion_module": ["mm", 0], "motion_scale": 1.0, "beta_schedule": "auto",
            "context_options": ["ctx", 0]}},
        "pos": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["ckpt", 1], "text": "a lighthouse, waves"}},
        "neg": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["ckpt", 1], "text": "blurry"}},
        "sample": {"class_type": "KSampler", "inputs": {
            "model": ["apply", 0], "seed": 7, "steps": s.steps, "cfg": s.cfg, "sampler_name": "euler",
            "scheduler": "normal", "positive": ["pos", 0], "negative": ["neg", 0], "latent_image": latent,
            "denoise": s.denoise}},
    }
