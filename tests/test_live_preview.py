"""The live animated preview: ComfyUI's own latent → RGB per frame, the sheet layout, the time budget, and the
events a whole sampling run sends (also with context windows, where the frames are already fused)."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch
from conftest import call_node, pack_module
from motion_helpers import small_motion
from PIL import Image
from sampling_helpers import ksampler

live_preview = pack_module("sampling.live_preview")
apply = pack_module("nodes.motion_apply")
loader = pack_module("motion.loader")


def _previewer():
    import comfy.latent_formats
    import latent_preview

    fmt = comfy.latent_formats.SD15()
    return latent_preview.Latent2RGBPreviewer(fmt.latent_rgb_factors, fmt.latent_rgb_factors_bias)


def _decode(payload: dict) -> Image.Image:
    head, data = payload["image"].split(",", 1)
    assert head == "data:image/jpeg;base64"
    return Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float32)


def test_frames_are_comfyuis_preview_of_each_frame_and_the_sheet_holds_them_in_order():
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(7, 4, 1, 1, generator=gen).expand(7, 4, 16, 16) * 2  # one colour per frame: JPEG keeps it
    previewer = _previewer()
    frames = live_preview.render_frames(previewer, x0)
    for i, frame in enumerate(frames):
        _, expected, _ = previewer.decode_latent_to_preview_image("JPEG", x0[i:])  # ComfyUI previews x0[:1]
        assert np.array_equal(_pixels(frame), _pixels(expected))
    data, layout = live_preview.sheet(frames)
    assert layout == {"frames": 7, "columns": 3, "width": 16, "height": 16}
    image = Image.open(io.BytesIO(data))
    assert image.size == (48, 48)
    for i, frame in enumerate(frames):
        x, y = (i % 3) * 16, (i // 3) * 16
        tile = _pixels(image.crop((x + 2, y + 2, x + 14, y + 14)))
        assert np.abs(tile - _pixels(frame)[2:14, 2:14]).mean() < 6, i


def test_big_frames_and_many_frames_are_scaled_down():
    frames = [Image.new("RGB", (512, 256)) for _ in range(3)]
    assert live_preview.sheet(frames)[1]["width"] == live_preview.MAX_FRAME_SIDE
    many = [Image.new("RGB", (128, 128)) for _ in range(400)]
    layout = live_preview.sheet(many)[1]
    assert layout["frames"] * layout["width"] * layout["height"] <= live_preview.MAX_SHEET_PIXELS


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.mark.parametrize("step_seconds, preview_seconds", [(1.0, 0.2), (0.05, 0.01), (2.0, 0.001)])
def test_preview_work_stays_within_five_percent_of_sampling_time(step_seconds, preview_seconds):
    clock = _Clock()
    sent = []

    def send(payload):
        sent.append(payload["step"])
        clock.now += preview_seconds  # the cost of this preview

    preview = live_preview.LivePreview(_previewer(), send, clock=clock)
    live_preview._costs.clear()
    callback = preview.wrap(None)
    x0 = torch.zeros(4, 4, 8, 8)
    steps = 200
    for i in range(steps):
        clock.now += step_seconds
        callback(i, x0, x0, steps)
    spent = len(sent) * preview_seconds
    assert spent <= live_preview.BUDGET * clock.now + preview_seconds  # the first preview is measured, not known
    if preview_seconds <= live_preview.BUDGET * step_seconds:
        assert sent == list(range(1, steps + 1)), "cheap previews go out every step"
    else:
        assert len(sent) >= 2, "and expensive ones still go out now and then"


class _FakeServer:
    client_id = "client-1"
    last_node_id = "12"

    def __init__(self):
        self.events = []

    def send_sync(self, event, data, sid=None):
        self.events.append((event, data, sid))


@pytest.fixture
def fake_server(monkeypatch):
    server = _FakeServer()
    monkeypatch.setattr(pack_module("host.server"), "prompt_server", lambda: server)
    live_preview._costs.clear()
    return server



def _motion_model(small_model, **kwargs):
    motion = small_motion("v3")
    return apply.apply_motion_module(small_model, motion, beta_schedule="sd", **kwargs)


def test_a_run_sends_all_frames_of_each_step_to_the_client_that_queued_it(small_model, fake_server):
    ksampler(_motion_model(small_model), 5, steps=3)
    assert [e for e, _, _ in fake_server.events] == [live_preview.EVENT] * 3
    for step, (_, payload, sid) in enumerate(fake_server.events, start=1):
        assert sid == "client-1" and payload["node"] == "12"
        assert (payload["step"], payload["total"], payload["frames"]) == (step, 3, 5)
        assert _decode(payload).size == (payload["columns"] * payload["width"], 2 * payload["height"])


def test_with_context_windows_the_preview_shows_the_fused_frames(small_model, fake_server):
    options = call_node("AnimateFlow_ContextOptions", context_length=4, context_stride=1, context_overlap=1,
                        closed_loop=False, schedule="uniform", fuse_method="pyramid")[0]
    ksampler(_motion_model(small_model, context_options=options), 10, steps=2)
    assert [p["frames"] for _, p, _ in fake_server.events] == [10, 10]


def test_live_preview_off_sends_nothing(small_model, fake_server):
    ksampler(_motion_model(small_model, live_preview=False), 3, steps=2)
    assert fake_server.events == []
