"""Sliding context windows on ComfyUI's own hook, `model_options["context_handler"]`.

`calc_cond_batch` (comfy/samplers.py) hands every model evaluation to the handler, which runs the UNet (and the
motion module inside it) on windows of frames and fuses the windows' predictions per frame. Every sampler, scheduler
and KSampler variant keeps working, and progress stays per step because the sampler, not the handler, reports it.

We implement the host's stable contract, `ContextHandlerABC` from host/sampling.py (should_use_context /
get_resized_cond / execute), with our own window type and loop; nothing of the host's own handler is inherited, so a
change in its internals (0.8.0 changed its window constructor) cannot break us. The host internals that remain are
pinned one test each in tests/test_host_internals_context.py.

Per model evaluation: the step's windows (context_schedules.py, every frame covered), grouped into calls of several
windows where Context Options allows it (`windows_per_call`; one per call by default, which gives the leading pack's
bits); each call gets its frames of the latent, timestep and per-frame conditioning (context_conds.py) and publishes
its frame indices in transformer_options (host/transformer_options.py), where the motion module reads where one window ends
and the next begins. Predictions are fused per frame (context_fuse.py); a non-finite result stops the run with the
settings that produced it.
"""

from __future__ import annotations

from typing import Callable

import torch

from ..host import execution, wrappers
from ..host import sampling as host_sampling
from ..host import transformer_options as keys
from ..host.sampling import ContextHandlerABC
from . import context_schedules, freenoise, gpu_spread, model_checks
from .context_conds import ControlHints, resize_cond
from .context_fuse import FrameWindow, UncoveredFramesError, WindowFuse
from .context_options import ContextOptions
from .errors import ContextWindowError

HANDLER_KEY = host_sampling.CONTEXT_HANDLER
WRAPPER_KEY = "AnimateFlow_context_windows"
PEAK_ALLOWANCE = 0.03  # auto batching may raise peak memory this much over one window per call
HOST_BATCH_MARGIN = 1.5  # the host's own margin when it decides whether cond and uncond fit one call


class AnimateFlowContextHandler(ContextHandlerABC):
    """Windows over the frame axis (the latent batch), per the user's Context Options."""

    def __init__(self, options: ContextOptions):
        super().__init__()
        self.options = options
        self.context_length = options.context_length
        self.context_overlap = options.resolved_overlap
        self.hints = ControlHints()
        self._completed_steps: int | None = None  # sampler steps done in the run in progress, from its callback
        self._spread = gpu_spread.GpuSpread()

    def should_use_context(self, model, conds, x_in: torch.Tensor, timestep, model_options: dict) -> bool:
        return x_in.size(0) > self.context_length

    def step_index(self, timestep: torch.Tensor, model_options: dict) -> int:
        """The original shifts windows by the sampler's step count, as the leading pack does (both count the steps
        the sampler reports): a sampler that evaluates twice per step (heun, dpm_2, ...) keeps one layout for both.
        Without step reports, the sigma's place in the run's sigmas (one between two steps counts as the earlier)."""
        by_sigma = 0
        sigmas = model_options.get(keys.TRANSFORMER_OPTIONS, {}).get(keys.SAMPLE_SIGMAS)
        if sigmas is not None:
            sigma = float(timestep.reshape(-1)[0])
            at_or_above = (sigmas >= sigma * (1 - 1e-4)).nonzero()
            by_sigma = int(at_or_above[-1].item()) if at_or_above.numel() else 0
        done = self._completed_steps
        return by_sigma if done is None or by_sigma > done + 1 else done

    def windows(self, frames: int, step: int) -> list[FrameWindow]:
        o = self.options
        return [FrameWindow(w) for w in context_schedules.context_windows(
            o.schedule, frames, o.context_length, self.context_overlap, o.context_stride, step, o.closed_loop)]

    def get_resized_cond(self, cond_in: list[dict] | None, x_in: torch.Tensor, window: FrameWindow,
                         device=None) -> list[dict] | None:
        return resize_cond(cond_in, x_in.size(0), window, self.hints, device)

    def windows_per_call(self, model, x_in: torch.Tensor, conds: list, windows: int) -> int:
        """How many windows one model call holds.

        Auto (max_batched_windows 0): as many as keep the estimated peak (weights + activations) within 3% of one
        window per call, and as fit free memory with the host's own margin. A user limit replaces the 3% rule but
        never the free-memory one."""
        if windows <= 1 or self.options.max_batched_windows == 1:
            return 1
        batch = max(1, sum(c is not None for c in conds)) * self.context_length
        per_window = float(model.memory_required([batch] + list(x_in.shape[1:])))
        if per_window <= 0:
            return 1
        free = host_sampling.free_memory(x_in.device)
        by_free = max(1, int(free // (per_window * HOST_BATCH_MARGIN)))
        if self.options.max_batched_windows:
            return max(1, min(windows, by_free, self.options.max_batched_windows))
        weights = sum(p.numel() * p.element_size() for p in model.parameters())
        by_peak = 1 + int(PEAK_ALLOWANCE * (weights + per_window) // per_window)
        return max(1, min(windows, by_free, by_peak))

    def execute(self, calc_cond_batch: Callable, model, conds, x_in: torch.Tensor, timestep, model_options: dict):
        frames = x_in.size(0)
        step = self.step_index(timestep, model_options)
        windows = self.windows(frames, step)
        per_call = self.windows_per_call(model, x_in, conds, len(windows))
        fuse = WindowFuse(self.options.fuse_method, x_in, len(conds))
        published = model_options.setdefault(keys.TRANSFORMER_OPTIONS, {})
        saved = {key: published[key] for key in _PUBLISHED if key in published}
        try:
            spread = self._spread_over_gpus(calc_cond_batch, conds, x_in, timestep, model_options, windows, per_call,
                                            frames, step)
            for window, outputs in zip(windows, spread or []):
                fuse.add(window, outputs)
            for first in range(0, len(windows), per_call) if spread is None else ():
                execution.check_interrupt()
                group = windows[first:first + per_call]
                call = FrameWindow.joined(group)
                _publish(published, group, call, frames, step)
                sub_conds = [self.get_resized_cond(cond, x_in, call) for cond in conds]
                outputs = calc_cond_batch(model, sub_conds, call.get_tensor(x_in), call.get_tensor(timestep),
                                          model_options)
                self.hints.keep_prepared()
                for j, window in enumerate(group):
                    part = slice(j * window.context_length, (j + 1) * window.context_length)
                    fuse.add(window, [out[part] for out in outputs])
            result = fuse.result()
        except UncoveredFramesError as e:
            raise ContextWindowError(f"{e} at step {step} ({self._settings(frames)})", "this is a bug in the window "
                                     "schedule, please report it with these settings.") from e
        finally:
            for key in _PUBLISHED:
                published.pop(key, None)
            published.update(saved)
            self.hints.restore()
        self._check_finite(result, frames, step)
        return result

    def _spread_over_gpus(self, calc_cond_batch: Callable, conds, x_in: torch.Tensor, timestep, model_options: dict,
                          windows: list[FrameWindow], per_call: int, frames: int, step: int) -> list | None:
        """Each window's outputs, the windows run on every GPU of the sampling (gpu_spread.py); None where the option
        is off, the sampling has one device or one window, or ControlNets keep it on core's cond/uncond split."""
        targets = gpu_spread.devices(model_options)
        if not self.options.spread_over_gpus or len(targets) < 2 or len(windows) < 2 or gpu_spread.has_control(conds):
            return None

        def call(group: list[int], device, device_model, device_options: dict) -> list[torch.Tensor]:
            members = [windows[i] for i in group]
            joined = FrameWindow.joined(members)
            _publish(device_options["transformer_options"], members, joined, frames, step)
            sub_conds = [self.get_resized_cond(cond, x_in, joined, device) for cond in conds]
            return calc_cond_batch(device_model, sub_conds, joined.get_tensor(x_in, device),
                                   joined.get_tensor(timestep, device), device_options)

        return self._spread.run(model_options, [w.context_length for w in windows], per_call, call, x_in.device)

    def _settings(self, frames: int) -> str:
        return f"{frames} frames, {self.options.describe()}"

    def _check_finite(self, result: list[torch.Tensor], frames: int, step: int) -> None:
        """A NaN/inf prediction would render black frames while the prompt reports success: stop instead."""
        for out in result:
            bad = ~torch.isfinite(out.reshape(frames, -1)).all(dim=1)
            if bool(bad.any()):
                raise ContextWindowError(
                    f"the model returned NaN/inf for frames {bad.nonzero().flatten().tolist()} at step {step} "
                    f"({self._settings(frames)})", "check the inputs upstream (a NaN motion_scale or latent), or "
                    "sample in float32 if the model overflows in half precision.")

    def begin_run(self) -> None:
        self.hints.forget()
        self._completed_steps = 0

    def step_done(self, step: int) -> None:
        self._completed_steps = step + 1

    def end_run(self) -> None:
        self.hints.forget()
        self._completed_steps = None


_PUBLISHED = (keys.AD_PARAMS, keys.WINDOWS, keys.FRAMES_PER_VIDEO, keys.CONTEXT_WINDOW)


def _publish(options: dict, group: list[FrameWindow], call: FrameWindow, frames: int, step: int) -> None:
    options[keys.AD_PARAMS] = {"full_length": frames, "context_length": call.context_length,
                                         "sub_idxs": list(call.index_list)}
    options[keys.WINDOWS] = {"windows": [list(w.index_list) for w in group], "full_length": frames,
                                       "step": step}
    options[keys.FRAMES_PER_VIDEO] = group[0].context_length
    options[keys.CONTEXT_WINDOW] = call  # where ComfyUI's own handler puts its window (its `index_list` is read)


def _handler(model_options: dict | None) -> AnimateFlowContextHandler | None:
    handler = (model_options or {}).get(HANDLER_KEY)
    return handler if isinstance(handler, AnimateFlowContextHandler) else None


def _prepare_sampling_wrapper(executor, *args, **kwargs):
    """PREPARE_SAMPLING: size the memory estimate for one window per call, not the whole video, or long videos
    would offload needlessly."""
    call = wrappers.WrappedCall(executor, args, kwargs)
    handler = _handler(call.get("model_options"))
    if handler is not None:
        shape = list(call["noise_shape"])
        shape[0] = min(shape[0], handler.context_length)
        call = call.replace(noise_shape=shape)
    return call()


def _outer_sample_wrapper(executor, *args, **kwargs):
    """OUTER_SAMPLE: every sampler node has drawn its noise before this point (FreeNoise reorders it here), the
    sampler's step callback passes through here (it counts the steps the windows shift by), and a run's per-run
    state (prepared ControlNet hints, the step count) lives exactly this long."""
    call = wrappers.WrappedCall(executor, args, kwargs)
    handler = _handler(getattr(call.host_object, "model_options", None))
    if handler is None:
        return call()
    noise = call["noise"]
    if handler.options.freenoise and noise.ndim > 1 and noise.size(0) > handler.context_length:
        stride = handler.context_length - handler.context_overlap
        noise = freenoise.freenoise_shuffle(noise, handler.context_length, stride, int(call.get("seed") or 0))
        call = call.replace(noise=noise)
    callback = call.get("callback")

    def count_steps(step, *rest, **more):
        handler.step_done(step)
        return None if callback is None else callback(step, *rest, **more)

    call = call.replace(callback=count_steps)
    handler.begin_run()
    try:
        return call()
    finally:
        handler.end_run()


def attach_context_options(model_patcher, options: ContextOptions) -> None:
    """Make sampling with this (already cloned) model run in context windows; the caller owns the clone."""
    model_patcher.model_options[HANDLER_KEY] = AnimateFlowContextHandler(options)
    # Attaching twice (Set Context Options, then Apply Motion Module) must replace, not stack, our wrappers.
    wrappers.add(model_patcher, wrappers.PREPARE_SAMPLING, WRAPPER_KEY, _prepare_sampling_wrapper)
    wrappers.add(model_patcher, wrappers.OUTER_SAMPLE, WRAPPER_KEY, _outer_sample_wrapper)
    model_checks.attach(model_patcher)

