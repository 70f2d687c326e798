"""Benchmark-only custom node package: what a ComfyUI server measured about its last prompt, over HTTP.

`benchmarks/server_check.py` copies this folder into the server's custom_nodes (never shipped with the pack). It
adds no nodes, only three routes:
- POST /animateflow_bench/reset: forget the last prompt's figures;
- GET /animateflow_bench/stats: the sampler's step stamps (taken CUDA-synchronised in ComfyUI's progress bar) and,
  over each sampling call (`comfy.sample.sample`, model loading included, VAE work not): torch's peak allocated and
  reserved memory and the device's peak used memory (cudaMemGetInfo every few ms: under dynamic VRAM comfy-aimdo
  allocates weights outside torch's allocator, so torch's own peak alone would miss them), and which model patcher
  classes are loaded (ModelPatcherDynamic proves dynamic VRAM ran);
- POST /animateflow_bench/drain: wait until the pack's fast-path compile worker is idle.
"""

from __future__ import annotations

import sys
import threading
import time

import comfy.model_management
import comfy.sample
import comfy.utils
import server
import torch
from aiohttp import web

NODE_CLASS_MAPPINGS: dict = {}
POLL_S = 0.005

_stamps: list[float] = []
_original_update = comfy.utils.ProgressBar.update_absolute


def _timed_update(self, value, total=None, preview=None):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    _stamps.append(time.perf_counter())
    return _original_update(self, value, total, preview)


comfy.utils.ProgressBar.update_absolute = _timed_update
_samplings: list[dict] = []
_original_sample = comfy.sample.sample


def _measured_sample(*args, **kwargs):
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        _device.start()
    try:
        return _original_sample(*args, **kwargs)
    finally:
        if cuda:
            torch.cuda.synchronize()
            _device.stop()
            _samplings.append({"torch_peak_allocated": torch.cuda.max_memory_allocated(),
                               "torch_peak_reserved": torch.cuda.max_memory_reserved(),
                               "device_used_at_start": _device.baseline, "device_peak_used": _device.peak})


comfy.sample.sample = _measured_sample


class _DevicePeak:
    def __init__(self) -> None:
        self.baseline = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def used() -> int:
        free, total = torch.cuda.mem_get_info()
        return total - free

    def start(self) -> None:
        self.stop()
        self.baseline = self.peak = self.used()
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, daemon=True, name="animateflow-bench-memory")
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.wait(POLL_S):
            self.peak = max(self.peak, self.used())

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            self.peak = max(self.peak, self.used())


_device = _DevicePeak()
routes = server.PromptServer.instance.routes


@routes.post("/animateflow_bench/reset")
async def _reset(request):
    _stamps.clear()
    _samplings.clear()
    return web.json_response({"ok": True})


@routes.get("/animateflow_bench/stats")
async def _stats(request):
    loaded = [type(m.model).__name__ for m in comfy.model_management.current_loaded_models]
    memory_management = sys.modules.get("comfy.memory_management")  # from ComfyUI 0.12 on
    peaks = {key: max((s[key] for s in _samplings), default=0) for key in
             ("torch_peak_allocated", "torch_peak_reserved", "device_peak_used")}
    return web.json_response({
        "stamps": list(_stamps), "samplings": len(_samplings), **peaks,
        "device_used_at_start": _samplings[0]["device_used_at_start"] if _samplings else 0,
        "device_total": torch.cuda.mem_get_info()[1] if torch.cuda.is_available() else 0,
        "loaded_patchers": loaded,
        "aimdo_enabled": bool(getattr(memory_management, "aimdo_enabled", False)),
    })


def _compile_worker_modules():
    for name, module in list(sys.modules.items()):
        if name.endswith("motion.compile_worker") or name.endswith("motion.fast_path"):
            yield module


@routes.post("/animateflow_bench/drain")
async def _drain(request):
    started = time.perf_counter()

    def wait() -> None:
        for module in _compile_worker_modules():
            if hasattr(module, "_compile_executor"):  # one worker, first in first out: a no-op ends after the rest
                module._compile_executor().submit(lambda: None).result()

    import asyncio

    await asyncio.get_running_loop().run_in_executor(None, wait)
    return web.json_response({"seconds": time.perf_counter() - started})
