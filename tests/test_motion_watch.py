"""Saying when motion did not happen: one warning in the log and on the Apply Motion Module node when the sampler
is fed another model, when a video has one frame, or when motion_scale is 0 everywhere."""

from __future__ import annotations

import asyncio
import json
import logging
import struct

import pytest
import torch
from conftest import call_node, pack_module
from motion_helpers import small_motion
from sampling_helpers import ksampler

motion_watch = pack_module("nodes.motion_watch")
apply = pack_module("nodes.motion_apply")
loader = pack_module("motion.loader")
scale_schedule = pack_module("motion.scale_schedule")

APPLY = "AnimateFlow_ApplyMotionModule"
TYPES = {"CheckpointLoaderSimple": ("MODEL", "CLIP", "VAE"), APPLY: ("MODEL",), "KSampler": ("LATENT",),
         "CFGGuider": ("GUIDER",), "SamplerCustomAdvanced": ("LATENT", "LATENT"), "ModelSamplingDiscrete": ("MODEL",),
         "AnimateFlow_LoadMotionModule": ("ANIMATEFLOW_MOTION_MODULE", "STRING"), "VAEDecode": ("IMAGE",)}


def _graph(*edges_to_sampler: str) -> dict:
    """A prompt: checkpoint → Apply (node 3); `edges_to_sampler` names what consumes Apply's MODEL."""
    graph = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "x"}},
        "2": {"class_type": "AnimateFlow_LoadMotionModule", "inputs": {"model_name": "m"}},
        "3": {"class_type": APPLY, "inputs": {"model": ["1", 0], "motion_module": ["2", 0]}},
        "9": {"class_type": "KSampler", "inputs": {"model": ["1", 0]}},
    }
    for i, kind in enumerate(edges_to_sampler):
        graph[str(10 + i)] = {"class_type": kind, "inputs": {"model": ["3", 0] if i == 0 else [str(9 + i), 0]}}
    return graph


@pytest.mark.parametrize("chain, warned", [
    ((), True),  # dangling: the sampler is fed the checkpoint's model
    (("KSampler",), False),
    (("ModelSamplingDiscrete", "KSampler"), False),
    (("CFGGuider", "SamplerCustomAdvanced"), False),
    (("ModelSamplingDiscrete",), True),
    (("SomePacksSampler",), False),  # unknown classes count as samplers: no warning when in doubt
])
def test_prompt_check_finds_apply_nodes_no_sampler_uses(chain, warned):
    unsampled = motion_watch.unsampled_apply_nodes(_graph(*chain), TYPES.get)
    assert unsampled == (["3"] if warned else [])



def _motion():
    return small_motion("v3")


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and r.name.endswith("motion_watch")]


def test_one_frame_per_video_warns_once_per_run(small_model, caplog):
    model = apply.apply_motion_module(small_model, _motion(), beta_schedule="sd", node_id="7")
    with caplog.at_level(logging.WARNING):
        ksampler(model, 1, steps=2)
    messages = _warnings(caplog)
    assert len(messages) == 1 and "node 7" in messages[0] and "one frame per video" in messages[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        ksampler(model, 3, steps=2)
    assert _warnings(caplog) == []


def test_clones_of_the_patched_model_do_not_warn(small_model, caplog):
    """ComfyUI deep-copies a clone's wrappers; a copied watch heard no calls and warned on every windowed render."""
    model = apply.apply_motion_module(small_model, _motion(), beta_schedule="sd", node_id="7")
    windowed = call_node("AnimateFlow_SetContextOptions", model=model, context_options=call_node(
        "AnimateFlow_ContextOptions", context_length=4, context_stride=1, context_overlap=1, closed_loop=False,
        schedule="uniform", fuse_method="pyramid")[0])[0]
    with caplog.at_level(logging.WARNING):
        ksampler(model.clone(), 3, steps=1)
        ksampler(windowed, 6, steps=1)
    assert _warnings(caplog) == []


def test_motion_scale_zero_everywhere_warns_when_applied(small_model, caplog):
    with caplog.at_level(logging.WARNING):
        apply.apply_motion_module(small_model, _motion(), motion_scale=0.0, beta_schedule="sd", node_id="4")
        apply.apply_motion_module(small_model, _motion(), beta_schedule="sd", node_id="5",
                                  scale_schedule=scale_schedule.MotionScaleSchedule(mask=torch.zeros(8, 8)))
        apply.apply_motion_module(small_model, _motion(), beta_schedule="sd", node_id="6",
                                  scale_schedule=scale_schedule.MotionScaleSchedule(keyframes=((0, 1.0), (8, 0.0))))
    messages = _warnings(caplog)
    assert len(messages) == 2 and "node 4" in messages[0] and "node 5" in messages[1]
    assert all("motion_scale is 0" in m for m in messages)


def _text_messages(server, graph: dict, timeout: float = 600) -> list[tuple[str, str]]:
    """Queue `graph` and collect the progress texts (node id, text) the server sends this client until it ends."""
    import aiohttp

    async def run():
        texts = []
        url = server.url.replace("http://", "ws://") + f"/ws?clientId={server.client_id}"
        async with aiohttp.ClientSession() as session, session.ws_connect(url, heartbeat=30) as ws:
            prompt_id = server.queue(graph)
            while True:
                msg = await ws.receive(timeout=timeout)
                if msg.type == aiohttp.WSMsgType.BINARY:
                    (kind,) = struct.unpack(">I", msg.data[:4])
                    if kind == 3:
                        (length,) = struct.unpack(">I", msg.data[4:8])
                        texts.append((msg.data[8:8 + length].decode(), msg.data[8 + length:].decode()))
                elif msg.type == aiohttp.WSMsgType.TEXT:
                    event = json.loads(msg.data)
                    data = event.get("data", {})
                    if data.get("prompt_id") == prompt_id and (
                            event["type"] in ("execution_success", "execution_error")
                            or (event["type"] == "executing" and data.get("node") is None)):
                        return texts
                else:
                    raise RuntimeError(f"websocket closed: {msg}")

    return asyncio.run(run())


def _prompt(sd15_file: str, module_file: str, frames: int, sampler_model_from: str) -> dict:
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": sd15_file}},
        "2": {"class_type": "AnimateFlow_LoadMotionModule", "inputs": {"model_name": module_file}},
        "3": {"class_type": APPLY, "inputs": {"model": ["1", 0], "motion_module": ["2", 0], "motion_scale": 1.0,
                                              "beta_schedule": "auto"}},
        "4": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": "a boat"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": frames}},
        "6": {"class_type": "KSampler", "inputs": {"model": [sampler_model_from, 0], "seed": 1, "steps": 1, "cfg": 1.0,
                                                   "sampler_name": "euler", "scheduler": "normal", "positive": ["4", 0],
                                                   "negative": ["4", 0], "latent_image": ["5", 0], "denoise": 1.0}},
        "7": {"class_type": "PreviewImage", "inputs": {"images": ["8", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["6", 0], "vae": ["1", 2]}},
    }


@pytest.mark.host
def test_warnings_reach_the_node_in_the_editor_and_the_log(server, sd15_file, motion_module_file, base_dir):
    module = motion_module_file("v3")
    log_before = (base_dir / "server.log").read_text(errors="replace")
    dangling = _text_messages(server, _prompt(sd15_file, module, 2, sampler_model_from="1"))
    assert [n for n, t in dangling if "reaches no sampler" in t] == ["3"]
    one_frame = _text_messages(server, _prompt(sd15_file, module, 1, sampler_model_from="3"))
    assert [n for n, t in one_frame if "one frame per video" in t] == ["3"]
    fine = _text_messages(server, _prompt(sd15_file, module, 2, sampler_model_from="3"))
    assert not [t for _, t in fine if t.startswith("⚠")]
    log_added = (base_dir / "server.log").read_text(errors="replace")[len(log_before):]
    assert log_added.count("reaches no sampler") == 1 and log_added.count("one frame per video") == 1
