"""Interrupts and errors mid-sampling leave no motion patch on the shared model (issue 7).

A fresh server (the session's, restarted: a new process, so the reference render really comes before any
AnimateDiff run) renders a plain SD1.5 image, then an AnimateDiff render interrupted through POST /interrupt while the
sampler reports progress, then one that raises inside sampling (25 frames on v1 without Context
Options: the motion layer raises inside our diffusion-model wrapper), re-rendering the plain image
after each. CheckpointLoaderSimple stays cached in the server, so every render uses the same MODEL
object: its latents must be bit-identical.
"""

from __future__ import annotations

import asyncio
import json
import shutil

import aiohttp
import numpy as np
import pytest
import safetensors.torch
import torch
from PIL import Image

from conftest import BASE_DIR
from scripts.comfy_host import PromptFailed

pytestmark = pytest.mark.host

OUTPUT = BASE_DIR / "output"
PREFIX = "interrupts"


@pytest.fixture(scope="module")
def fresh_server(server, sd15_file):
    """The session's server restarted: a new process, and no second server beside it in memory."""
    server.server.restart()
    yield server
    shutil.rmtree(OUTPUT / PREFIX, ignore_errors=True)


def _plain(ckpt: str, identity_steps: int) -> dict:
    """A plain render; `identity_steps` LatentMultiply(1.0) nodes (exact no-ops) make each prompt miss the
    cache below the checkpoint loader, so KSampler really runs again on the cached, shared MODEL."""
    g = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a lighthouse at dusk", "clip": ["1", 1]}},
        "3": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
    }
    latent = ["3", 0]
    for i in range(identity_steps):
        g[str(20 + i)] = {"class_type": "LatentMultiply", "inputs": {"samples": latent, "multiplier": 1.0}}
        latent = [str(20 + i), 0]
    g["4"] = {"class_type": "KSampler",
              "inputs": {"model": ["1", 0], "seed": 11, "steps": 2, "cfg": 7.0, "sampler_name": "euler",
                         "scheduler": "normal", "positive": ["2", 0], "negative": ["2", 0], "latent_image": latent,
                         "denoise": 1.0}}
    g["5"] = {"class_type": "VAEDecode", "inputs": {"samples": ["4", 0], "vae": ["1", 2]}}
    g["6"] = {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": f"{PREFIX}/plain"}}
    g["7"] = {"class_type": "SaveLatent", "inputs": {"samples": ["4", 0], "filename_prefix": f"{PREFIX}/plain"}}
    return g


def _animate(ckpt: str, module: str, frames: int, steps: int) -> dict:
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": ckpt}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a lighthouse at dusk", "clip": ["1", 1]}},
        "3": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": frames}},
        "8": {"class_type": "AnimateFlow_LoadMotionModule", "inputs": {"model_name": module}},
        "9": {"class_type": "AnimateFlow_ApplyMotionModule",
              "inputs": {"model": ["1", 0], "motion_module": ["8", 0], "motion_scale": 1.0, "beta_schedule": "auto"}},
        "4": {"class_type": "KSampler",
              "inputs": {"model": ["9", 0], "seed": 3, "steps": steps, "cfg": 7.0, "sampler_name": "euler",
                         "scheduler": "normal", "positive": ["2", 0], "negative": ["2", 0], "latent_image": ["3", 0],
                         "denoise": 1.0}},
        "7": {"class_type": "SaveLatent", "inputs": {"samples": ["4", 0], "filename_prefix": f"{PREFIX}/video"}},
    }


def _render(server, ckpt: str, identity_steps: int) -> tuple[torch.Tensor, np.ndarray]:
    entry = server.run(_plain(ckpt, identity_steps), timeout=300)
    latent = entry["outputs"]["7"]["latents"][0]
    samples = safetensors.torch.load_file(str(OUTPUT / latent["subfolder"] / latent["filename"]))["latent_tensor"]
    image = entry["outputs"]["6"]["images"][0]
    local = OUTPUT / image["subfolder"] / (image["filename"] + ".view.png")
    local.write_bytes(server.view(image["filename"], image["subfolder"]))
    with Image.open(local) as png:
        pixels = np.asarray(png.convert("RGB"))
    assert torch.isfinite(samples).all()
    return samples, pixels


async def _queue_and_interrupt(server, graph: dict) -> tuple[str, list[dict]]:
    """Queue over HTTP, interrupt on the first `progress` event of this prompt seen on /ws."""
    events = []
    ws_url = server.url.replace("http", "ws", 1) + f"/ws?clientId={server.client_id}"
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url) as ws:
        prompt_id = await asyncio.to_thread(server.queue, graph)
        async with asyncio.timeout(300):
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                event = json.loads(message.data)
                events.append(event)
                data = event.get("data", {})
                if event["type"] == "progress" and data.get("prompt_id") == prompt_id:
                    assert data["value"] < data["max"], "the render finished before it could be interrupted"
                    await asyncio.to_thread(server.interrupt)
                    break
    return prompt_id, events


def test_interrupt_and_error_leave_the_shared_model_unpatched(fresh_server, sd15_file, motion_module_file):
    server = fresh_server
    v1, v2 = motion_module_file("v1"), motion_module_file("v2")
    reference, reference_pixels = _render(server, sd15_file, 0)

    prompt_id, events = asyncio.run(_queue_and_interrupt(server, _animate(sd15_file, v2, frames=4, steps=200)))
    with pytest.raises(PromptFailed) as failed:
        server.wait(prompt_id, timeout=300)
    kinds = [m[0] for m in failed.value.entry["status"]["messages"]]
    assert "execution_interrupted" in kinds, kinds
    after_interrupt, pixels = _render(server, sd15_file, 1)
    assert torch.equal(after_interrupt, reference), "the plain render changed after an interrupted AnimateDiff run"
    assert np.array_equal(pixels, reference_pixels)

    with pytest.raises(PromptFailed) as failed:
        server.run(_animate(sd15_file, v1, frames=25, steps=1), timeout=300)
    assert "positional encoding" in json.dumps(failed.value.errors)
    after_error, pixels = _render(server, sd15_file, 2)
    assert torch.equal(after_error, reference), "the plain render changed after AnimateDiff raised mid-sampling"
    assert np.array_equal(pixels, reference_pixels)

    # The model still samples videos correctly afterwards: the motion module was ejected, not lost.
    entry = server.run(_animate(sd15_file, v2, frames=4, steps=1), timeout=300)
    latent = entry["outputs"]["7"]["latents"][0]
    video = safetensors.torch.load_file(str(OUTPUT / latent["subfolder"] / latent["filename"]))["latent_tensor"]
    assert video.shape == (4, 4, 8, 8) and torch.isfinite(video).all()
