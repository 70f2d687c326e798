"""Context Options' spread_over_gpus through the prompt API on a one-device host: a no-op to the bit.

One prompt renders the same 6 frames in windows of 4 (two windows per step) twice: the option off, and on behind
core's MultiGPU CFG Split (where the host has it; with one device it makes no clones). 64 px, 1 step, cfg 1.
"""

from __future__ import annotations

import safetensors.torch
import torch

from conftest import BASE_DIR

PREFIX = "multigpu_prompt"
FRAMES = 6


def _branch(graph: dict, first: int, spread: bool, split: bool) -> str:
    """Context Options → Apply Motion Module (→ MultiGPU CFG Split) → KSampler → SaveLatent; the SaveLatent's id."""
    ids = [str(first + i) for i in range(5)]
    options, applied, split_id, sampler, save = ids
    graph[options] = {"class_type": "AnimateFlow_ContextOptions",
                      "inputs": {"context_length": 4, "context_stride": 1, "context_overlap": 2, "closed_loop": False,
                                 "schedule": "uniform", "fuse_method": "pyramid", "spread_over_gpus": spread}}
    graph[applied] = {"class_type": "AnimateFlow_ApplyMotionModule",
                      "inputs": {"model": ["1", 0], "motion_module": ["2", 0], "motion_scale": 1.0,
                                 "beta_schedule": "auto", "context_options": [options, 0]}}
    model = [applied, 0]
    if split:
        graph[split_id] = {"class_type": "MultiGPU_WorkUnits", "inputs": {"model": model, "max_gpus": 2}}
        model = [split_id, 0]
    graph[sampler] = {"class_type": "KSampler",
                      "inputs": {"model": model, "seed": 4, "steps": 1, "cfg": 1.0, "sampler_name": "euler",
                                 "scheduler": "normal", "positive": ["3", 0], "negative": ["3", 0],
                                 "latent_image": ["4", 0], "denoise": 1.0}}
    graph[save] = {"class_type": "SaveLatent",
                   "inputs": {"samples": [sampler, 0], "filename_prefix": f"{PREFIX}/b{first}"}}
    return save


def _latent(entry: dict, node: str) -> torch.Tensor:
    saved = entry["outputs"][node]["latents"][0]
    return safetensors.torch.load_file(str(BASE_DIR / "output" / saved["subfolder"] / saved["filename"]))[
        "latent_tensor"]


def test_spread_over_gpus_on_one_device_gives_the_same_bits(server, sd15_file, motion_module_file):
    graph = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": sd15_file}},
        "2": {"class_type": "AnimateFlow_LoadMotionModule", "inputs": {"model_name": motion_module_file("v2")}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "a kite over a beach", "clip": ["1", 1]}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": FRAMES}},
    }
    branches = [(False, False), (True, "MultiGPU_WorkUnits" in server.object_info())]
    saves = [_branch(graph, 10 * (i + 1), spread, split) for i, (spread, split) in enumerate(branches)]
    entry = server.run(graph, timeout=600)
    off, *others = [_latent(entry, save) for save in saves]
    assert off.shape == (FRAMES, 4, 8, 8) and torch.isfinite(off).all() and off.std() > 0
    for other in others:
        assert torch.equal(other, off)
