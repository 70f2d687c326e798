"""Running one step's context windows on every GPU a sampling has (Context Options' `spread_over_gpus`).

The GPUs are core's multigpu clones (MultiGPU CFG Split, ComfyUI 0.33.0+): during sampling the host puts them in
`model_options["multigpu_clones"]` (device → that device's ModelPatcher, the main device first) and runs a worker
thread per extra device (`multigpu_thread_pool`). Without spreading, each window's call goes through core's split
of cond and uncond, which caps at two GPUs and gives nothing at cfg 1. With it, each device runs whole windows
(cond and uncond together) on its own clone: window_spread.py picks which, weighted by each device's windows per
second measured in earlier steps; results come back to the main device and are fused in window order, so where one
device runs everything the bits are those of one GPU.
"""

from __future__ import annotations

import time
from typing import Callable

import torch

from ..host import execution
from ..host import sampling as host_sampling
from . import window_spread

# Host keys that make a model call go through core's cond/uncond split; a device's own calls run without them.
_MULTIGPU_KEYS = (host_sampling.MULTIGPU_CLONES, host_sampling.MULTIGPU_THREAD_POOL, host_sampling.MULTIGPU_OPTIONS)


def devices(model_options: dict) -> list[tuple[torch.device, object]]:
    """(device, that device's model patcher) for every GPU of this sampling, the main one first; one entry or none
    when the sampling has no multigpu clones."""
    clones = model_options.get(host_sampling.MULTIGPU_CLONES) or {}
    return list(clones.items())


def has_control(conds: list) -> bool:
    """ControlNets keep per-window hint state on one object per control (context_conds.ControlHints), which the
    devices' threads would share: such samplings keep core's cond/uncond split."""
    return any("control" in c for cond in conds if cond for c in cond)


def _priors(model_options: dict, targets: list[torch.device]) -> list[float]:
    options = model_options.get(host_sampling.MULTIGPU_OPTIONS) or {}
    return [float((options.get(d) or {}).get("relative_speed", 1.0)) for d in targets]


def _device_options(model_options: dict, device: torch.device) -> dict:
    """The model options of one device's calls: its own transformer_options (each thread publishes its own windows
    there), the run's sigmas on its device, and none of the host's multigpu keys."""
    options = {k: v for k, v in model_options.items() if k not in _MULTIGPU_KEYS}
    transformer_options = dict(model_options.get("transformer_options", {}))
    sigmas = transformer_options.get("sample_sigmas")
    if isinstance(sigmas, torch.Tensor):
        transformer_options["sample_sigmas"] = sigmas.to(device)
    options["transformer_options"] = transformer_options
    return options


CallFn = Callable[[list[int], torch.device, object, dict], list[torch.Tensor]]


class GpuSpread:
    """One sampling's spread: the speed meter lives as long as the context handler, so weights carry across steps
    and renders of the same model (each step re-measures)."""

    def __init__(self) -> None:
        self.meter: window_spread.SpeedMeter | None = None
        self._targets: list[torch.device] = []

    def weights(self, model_options: dict, targets: list[torch.device]) -> list[float]:
        if self.meter is None or self._targets != targets:
            self.meter = window_spread.SpeedMeter(_priors(model_options, targets))
            self._targets = targets
        return self.meter.weights()

    def run(self, model_options: dict, lengths: list[int], per_call: int, call: CallFn,
            output_device: torch.device) -> list[list[torch.Tensor]]:
        """Each window's outputs (cond, uncond, ...) on `output_device`, in window order, every window run on some
        device. `lengths` are the windows' frame counts; `call(group, device, device_model, device_options)` runs one
        model call of the consecutive windows `group` (indices) and returns its outputs, windows back to back."""
        targets = devices(model_options)
        weights = self.weights(model_options, [d for d, _ in targets])
        shards = window_spread.shards(window_spread.assign(len(lengths), weights), len(targets))
        pool = model_options.get(host_sampling.MULTIGPU_THREAD_POOL)
        inference = torch.is_inference_mode_enabled()  # thread-local: the pool's threads take the sampler's

        def work(index: int) -> list[tuple[int, list[torch.Tensor]]]:
            with torch.inference_mode(inference), torch.no_grad():
                return _work(index)

        def _work(index: int) -> list[tuple[int, list[torch.Tensor]]]:
            device, patcher = targets[index]
            options = _device_options(model_options, device)
            start = time.perf_counter()
            done = []
            for group in window_spread.calls(shards[index], per_call):
                execution.check_interrupt()
                outputs = [out.to(output_device) for out in call(group, device, patcher.model, options)]
                first = 0
                for window in group:
                    part = slice(first, first + lengths[window])
                    done.append((window, [out[part] for out in outputs]))
                    first += lengths[window]
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            self.meter.record(index, len(shards[index]), time.perf_counter() - start)
            return done

        pooled = [i for i, (device, _) in enumerate(targets)
                  if i and shards[i] and pool is not None and device in pool.devices]
        for i in pooled:
            pool.submit(targets[i][0], work, i)
        results: list[tuple[int, list[torch.Tensor]]] = []
        errors: list[BaseException] = []
        try:
            for i in range(len(targets)):
                if shards[i] and i not in pooled:
                    results += work(i)
        except BaseException as error:  # collect the workers' results first, or the next step would read them
            errors.append(error)
        for i in pooled:
            done, failed = pool.get_result(targets[i][0])
            if failed is not None:
                errors.append(failed)
            results += done or []
        if errors:
            raise errors[0]
        return window_spread.fuse_order(results, len(lengths))
