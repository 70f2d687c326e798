"""A live animated preview: every few steps, all frames of the current denoised estimate go to the editor.

ComfyUI's own preview shows one image, the first frame. Here an OUTER_SAMPLE wrapper wraps the sampler's step
callback (so every sampler node gets it) and, on a step it can afford, turns each frame of the denoised latent
into RGB with ComfyUI's own latent preview method (`latent_preview.get_previewer`: TAESD when the user chose it,
else the latent format's Latent2RGB factors; Latent2RGB when previews are off, since this one is on by default),
tiles the frames into one JPEG sheet and sends it over the server's websocket as the `animateflow.live_preview`
event to the client that queued the prompt. web/live_preview.js plays the sheet as a looping animation. With
context windows the callback already sees the fused frames.

Throttled by time: the preview work of a run never exceeds BUDGET of the time sampling has taken so far (after
the first preview, whose cost is measured), so it costs under 5% of a step on average.
"""

from __future__ import annotations

import base64
import io
import logging
import math
import time
from typing import Callable

import torch
from PIL import Image

from ..host import server as host_server
from ..host import wrappers

log = logging.getLogger(__name__)

EVENT = "animateflow.live_preview"
WRAPPER_KEY = "AnimateFlow_live_preview"
BUDGET = 0.05
MAX_FRAME_SIDE = 128
MAX_SHEET_PIXELS = 1 << 21
JPEG_QUALITY = 75
FPS = 8
_costs: dict[tuple, float] = {}  # last measured cost per (previewer, frames, height, width), across runs


class Throttle:
    """Allows work while its total stays under `budget` × the time elapsed since the start."""

    def __init__(self, budget: float = BUDGET, estimate: float = 0.0, clock: Callable[[], float] = time.perf_counter):
        self.budget = budget
        self.estimate = estimate
        self.clock = clock
        self.start = clock()
        self.spent = 0.0

    def allow(self) -> bool:
        return self.spent + self.estimate <= self.budget * (self.clock() - self.start)

    def record(self, seconds: float) -> None:
        self.spent += seconds
        self.estimate = seconds


def previewer_for(model_patcher):
    """ComfyUI's previewer for this model's latents; Latent2RGB when the user turned previews off."""
    return host_server.latent_previewer(model_patcher.load_device, model_patcher.model.latent_format)


def render_frames(previewer, x0: torch.Tensor) -> list[Image.Image]:
    """Each frame of a (frames, channels, h, w) latent as the previewer draws a single image."""
    return [previewer.decode_latent_to_preview(x0[i:i + 1]) for i in range(x0.shape[0])]


def sheet(frames: list[Image.Image]) -> tuple[bytes, dict]:
    """The frames tiled row by row into one JPEG, with the layout the editor needs to cut them out again."""
    count = len(frames)
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    width, height = frames[0].size
    scale = min(1.0, MAX_FRAME_SIDE / max(width, height), math.sqrt(MAX_SHEET_PIXELS / (count * width * height)))
    fw, fh = max(1, round(width * scale)), max(1, round(height * scale))
    canvas = Image.new("RGB", (columns * fw, rows * fh))
    for i, frame in enumerate(frames):
        if frame.size != (fw, fh):
            frame = frame.resize((fw, fh), Image.BILINEAR)
        canvas.paste(frame.convert("RGB"), ((i % columns) * fw, (i // columns) * fh))
    out = io.BytesIO()
    canvas.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue(), {"frames": count, "columns": columns, "width": fw, "height": fh}


class LivePreview:
    """One sampling run's preview: wraps its step callback, renders and sends when the throttle allows."""

    def __init__(self, previewer, send: Callable[[dict], None], node: str | None = None,
                 clock: Callable[[], float] = time.perf_counter):
        self.previewer = previewer
        self.send = send
        self.node = node
        self.clock = clock
        self.throttle: Throttle | None = None
        self.sent = 0

    def wrap(self, callback):
        self.throttle = Throttle(clock=self.clock)

        def step(i, x0, x, total):
            if callback is not None:
                callback(i, x0, x, total)
            self.maybe_send(i, x0, total)

        return step

    def maybe_send(self, step: int, x0: torch.Tensor, total: int) -> None:
        if self.previewer is None or x0 is None or x0.ndim != 4:
            return
        key = (type(self.previewer).__name__, *x0.shape[:1], *x0.shape[2:])
        if self.sent == 0 and key in _costs:
            self.throttle.estimate = _costs[key]
        if not self.throttle.allow():
            return
        started = self.clock()
        image, layout = sheet(render_frames(self.previewer, x0))
        payload = {"node": self.node, "step": step + 1, "total": total, "fps": FPS, **layout,
                   "image": "data:image/jpeg;base64," + base64.b64encode(image).decode("ascii")}
        self.send(payload)
        cost = self.clock() - started
        self.throttle.record(cost)
        _costs[key] = cost
        self.sent += 1


def outer_sample_wrapper(executor, *args, **kwargs):
    """OUTER_SAMPLE wrapper: previews go to the client that queued the prompt, shown for the running node."""
    call = wrappers.WrappedCall(executor, args, kwargs)
    sender = host_server.client_sender(EVENT)
    if sender is None:
        return call()
    send, node = sender
    preview = LivePreview(previewer_for(call.host_object.model_patcher), send, node=node)
    return call.replace(callback=preview.wrap(call["callback"]))()


def attach(model_patcher, enabled: bool) -> None:
    wrappers.remove(model_patcher, wrappers.OUTER_SAMPLE, WRAPPER_KEY)
    if enabled:
        wrappers.add(model_patcher, wrappers.OUTER_SAMPLE, WRAPPER_KEY, outer_sample_wrapper)
