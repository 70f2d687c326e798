"""Soak: 30 mixed prompts through the HTTP API at tiny sizes (32x32 px) (issue 7, "Leaks and load").

Five kinds cycle (txt2vid on v2, v1 in context windows, v2 with a motion LoRA, img2vid through
Latent Init Blend, v2 in static FreeNoise windows), each ending in Video Combine with a different set
of formats, so every format is written six times. The first five prompts (one of each kind, every model
loaded) are the warm-up; the other 25 are queued at once. The server's RSS after the last must be within
10% of after the fifth, every output must decode, and no temporary file may remain.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import av
import pytest
import safetensors.torch
import torch
from PIL import Image

from conftest import BASE_DIR

pytestmark = pytest.mark.host

OUTPUT = BASE_DIR / "output"
TEMP = BASE_DIR / "temp"
PREFIX = "soak"
PROMPTS = 30
SIZE = 32  # px: the smallest the UNet takes (a 4x4 latent); the soak is about load, not pixels
WARMUP = 5
FORMATS = ("save_gif", "save_mp4", "save_webm", "save_png", "save_txt")


def _kind(i: int, files: dict) -> dict:
    """Per kind: frames, module, context options, LoRA, img2vid, Video Combine formats (and reverse)."""
    kinds = [
        dict(frames=6, module=files["v2"], formats=("save_gif", "save_mp4")),
        dict(frames=8, module=files["v1"], context=dict(context_length=4, context_overlap=1, schedule="uniform"),
             formats=("save_webm",)),
        dict(frames=4, module=files["v2"], lora=files["lora"], formats=("save_png", "save_txt")),
        dict(frames=6, module=files["v2"], img2vid=True, formats=("save_gif", "save_mp4", "save_webm"), reverse=True),
        dict(frames=5, module=files["v2"], context=dict(context_length=4, context_overlap=2, schedule="static",
                                                        freenoise=True), formats=FORMATS),
    ]
    return kinds[i % len(kinds)]


def _graph(i: int, files: dict) -> dict:
    kind = _kind(i, files)
    frames = kind["frames"]
    g = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": files["ckpt"]}},
        "2": {"class_type": "AnimateFlow_LoadMotionModule", "inputs": {"model_name": kind["module"]}},
        "4": {"class_type": "AnimateFlow_ApplyMotionModule",
              "inputs": {"model": ["1", 0], "motion_module": ["2", 0], "motion_scale": 1.0, "beta_schedule": "auto"}},
        "5": {"class_type": "CLIPTextEncode", "inputs": {"text": "a boat on a lake", "clip": ["1", 1]}},
        "6": {"class_type": "EmptyLatentImage", "inputs": {"width": SIZE, "height": SIZE, "batch_size": frames}},
        "7": {"class_type": "KSampler",
              "inputs": {"model": ["4", 0], "seed": i, "steps": 1, "cfg": 1.0, "sampler_name": "euler",
                         "scheduler": "normal", "positive": ["5", 0], "negative": ["5", 0], "latent_image": ["6", 0],
                         "denoise": 1.0}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["7", 0], "vae": ["1", 2]}},
        "9": {"class_type": "AnimateFlow_VideoCombine",
              "inputs": {"images": ["8", 0], "fps": 8.0, "filename_prefix": f"{PREFIX}/p{i:02}",
                         "reverse": kind.get("reverse", False), "preset": "ultrafast",
                         **{name: name in kind["formats"] for name in FORMATS}}},
        "10": {"class_type": "SaveLatent", "inputs": {"samples": ["7", 0], "filename_prefix": f"{PREFIX}/p{i:02}"}},
    }
    if "lora" in kind:
        g["3"] = {"class_type": "AnimateFlow_MotionLoRALoader",
                  "inputs": {"motion_module": ["2", 0], "lora_name": kind["lora"], "strength": 0.8}}
        g["4"]["inputs"]["motion_module"] = ["3", 0]
    if "context" in kind:
        g["11"] = {"class_type": "AnimateFlow_ContextOptions",
                   "inputs": {"context_stride": 1, "closed_loop": False, "fuse_method": "pyramid", **kind["context"]}}
        g["4"]["inputs"]["context_options"] = ["11", 0]
    if kind.get("img2vid"):
        g["12"] = {"class_type": "EmptyImage", "inputs": {"width": SIZE, "height": SIZE, "batch_size": 1,
                                                          "color": 0x204060 + i}}
        g["13"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["12", 0], "vae": ["1", 2]}}
        g["14"] = {"class_type": "AnimateFlow_LatentInitBlend",
                   "inputs": {"init_latent": ["13", 0], "frames": frames, "latent_power": 1.0, "latent_scale": 8.0,
                              "seed": i, "model": ["1", 0]}}
        g["7"]["inputs"]["latent_image"] = ["14", 0]
        g["7"]["inputs"]["denoise"] = 0.7
    return g


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _video_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(container.streams.video[0]))


def _check_outputs(i: int, entry: dict, files: dict) -> None:
    kind = _kind(i, files)
    expected = kind["frames"] * 2 if kind.get("reverse") else kind["frames"]
    latent = entry["outputs"]["10"]["latents"][0]
    samples = safetensors.torch.load_file(str(OUTPUT / latent["subfolder"] / latent["filename"]))["latent_tensor"]
    assert samples.shape == (kind["frames"], 4, SIZE // 8, SIZE // 8) and torch.isfinite(samples).all(), i
    items = entry["outputs"]["9"].get("animateflow", [])
    previews = [item for item in items if item["role"] != "poster"]
    assert [item["role"] for item in items if item["role"] == "poster"] == ["poster"], (i, items)
    written = sorted((OUTPUT / PREFIX).glob(f"p{i:02}_*"))
    suffixes = {p.suffix for p in written}
    wanted = {".gif": "save_gif", ".mp4": "save_mp4", ".webm": "save_webm", ".png": "save_png", ".txt": "save_txt"}
    assert suffixes - {".latent"} == {s for s, name in wanted.items() if name in kind["formats"]}, (i, written)
    playable = [name for name in ("save_mp4", "save_webm", "save_gif") if name in kind["formats"]]
    assert len(previews) == len(playable), (i, previews)
    for path in written:
        if path.suffix in (".mp4", ".webm"):
            assert _video_frames(path) == expected, path
        elif path.suffix == ".gif":
            with Image.open(path) as gif:
                assert gif.size == (SIZE, SIZE) and gif.n_frames >= 1, path
        elif path.suffix == ".png":
            with Image.open(path) as png:
                png.load()
                assert png.size == (SIZE, SIZE), path
        elif path.suffix == ".txt":
            assert f"{expected}" in path.read_text(), path
    if "save_png" in kind["formats"]:
        assert len([p for p in written if p.suffix == ".png"]) == expected


def _leftovers() -> list[Path]:
    found = [p for p in OUTPUT.rglob("*") if p.is_file() and (p.name.startswith(".") or p.suffix == ".partial")]
    if TEMP.exists():
        # Poster frames are meant to stay in temp/ (the preview shows them; ComfyUI empties temp/ at start-up).
        found += [p for p in TEMP.rglob("*") if p.is_file() and not (p.suffix == ".png" and "_poster_" in p.name)]
    return found


def test_soak_thirty_mixed_prompts(server, sd15_file, motion_module_file, motion_lora_file):
    files = {"ckpt": sd15_file, "v1": motion_module_file("v1"), "v2": motion_module_file("v2"),
             "lora": motion_lora_file}
    shutil.rmtree(OUTPUT / PREFIX, ignore_errors=True)
    temp_before = set(TEMP.rglob("*")) if TEMP.exists() else set()
    pid = server.server.process.pid
    started = time.monotonic()
    try:
        for i in range(WARMUP):
            _check_outputs(i, server.run(_graph(i, files), timeout=300), files)
        rss_warm = _rss_kib(pid)
        queued = [(i, server.queue(_graph(i, files))) for i in range(WARMUP, PROMPTS)]
        for i, prompt_id in queued:
            _check_outputs(i, server.wait(prompt_id, timeout=600), files)
        rss_last = _rss_kib(pid)
        print(f"soak: {PROMPTS} prompts in {time.monotonic() - started:.0f} s; "
              f"RSS after {WARMUP}: {rss_warm / 1024:.0f} MiB, after {PROMPTS}: {rss_last / 1024:.0f} MiB")
        assert abs(rss_last - rss_warm) <= 0.10 * rss_warm, (rss_warm, rss_last)
        new_temp = [p for p in _leftovers() if p not in temp_before]
        assert not new_temp, f"temporary files remain: {new_temp[:5]}"
    finally:
        shutil.rmtree(OUTPUT / PREFIX, ignore_errors=True)
