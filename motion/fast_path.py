"""A CUDA fast path for the motion modules: per patched model, which input shapes run a compiled graph.

Why a second path: on a GPU the eager module spends most of its time outside its FLOPs (benchmarks/NOTES.md). The
maths is fast_math.py (one layout change, fused q/k/v, swappable attention), the attention kernel is chosen by
fast_kernels.py, and compile_worker.py compiles each shape on a worker thread that pauses while we sample. This file
keeps the books: a `FastPath` (one per patched model, made by apply.py) runs the plain path for a shape until that
shape's graph is ready, asks the worker for it the first time the shape is seen, and switches per shape when it is.

With the compile cache turned on (compile_cache.py), a shape compiled in an earlier session loads from ComfyUI's
user folder instead of compiling.

The plain path (model.py, ComfyUI's attention) stays the reference and what runs on CPU, under an outer
torch.compile, for a shape whose compile failed, and while a shape compiles; each reason is said once.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import threading
import time
from typing import Callable

import torch
from torch.utils._pytree import tree_flatten, tree_unflatten

from ..host import models as host_models
from . import compile_cache, compile_worker
from .fast_kernels import attention_kernel
from .fast_math import gather_params, transformer_math
from .model import VanillaTemporalModule

log = logging.getLogger(__name__)

MODES = ("auto", "off")
MAX_FRAMES = 32
_FAST_DTYPES = (torch.float16, torch.bfloat16)
# A compile's trial run allocates about this many times the input (the GEGLU hidden layer is 8 channels per
# channel); it runs only where that much is free, so the first render never runs out of memory for it.
_TRIAL_RUN_MEMORY = 16
# The compile's example inputs are drawn from a generator of their own: the worker must never draw from the
# global CUDA generator, whose stream seeds what samples on the main thread.
_EXAMPLE_SEED = 0


class _ModelMoved(Exception):
    """The weights left the device between a shape's request and its compile."""


def _moved(tensors: list[torch.Tensor], x: torch.Tensor) -> bool:
    return any(t.device != x.device for t in tensors)


def _tensor_signature(t: torch.Tensor) -> tuple:
    return tuple(t.shape), t.stride(), t.dtype, t.device


def _describe(x: torch.Tensor, frames: int) -> str:
    return f"{frames} frames × {tuple(x.shape)} {str(x.dtype).removeprefix('torch.')}"


class FastPath:
    """The fast path of one patched model: which shapes are compiled, compiling or failed, and what was said.

    Shared by every clone of that model (ComfyUI deep-copies model options on clone; a copy returns this object), so
    a compiled shape serves all of them. `cache` is where compiled graphs outlive the process: "default" is
    compile_cache.default_cache() (off unless turned on), None none. `compiler` and `device_types` exist for tests:
    the CPU suite drives the same logic with a stand-in compiler.
    """

    def __init__(self, mode: str = "auto", *, compiler: Callable | None = None,
                 device_types: tuple[str, ...] = ("cuda",), cache: compile_cache.CompileCache | None | str = "default"):
        if mode not in MODES:
            raise ValueError(f"unknown fast path mode {mode!r}; choose one of {MODES}")
        self.mode = mode
        self._compiler = compiler
        self._cache = cache
        self._device_types = device_types
        self._lock = threading.RLock()
        self._ready: dict[tuple, Callable] = {}
        self._failed: dict[tuple, str] = {}
        self._pending: dict[tuple, concurrent.futures.Future] = {}
        # Input shapes with no graph to run yet (compiling or failed): the plain path without gathering parameters,
        # so a render that waits on a compile costs what eager costs.
        self._waiting: set[tuple] = set()
        self._said: set[str] = set()
        self._scales: dict[tuple, torch.Tensor] = {}

    def __copy__(self) -> FastPath:
        return self

    def __deepcopy__(self, memo) -> FastPath:
        return self

    def _say(self, level: int, message: str) -> None:
        with self._lock:
            if message in self._said:
                return
            self._said.add(message)
        log.log(level, message)

    def unavailable_reason(self, x: torch.Tensor, frames: int) -> str | None:
        """Why the fast path cannot run on this input at all, or None when it can."""
        if x.device.type not in self._device_types:
            return f"activations on {x.device.type}, not {'/'.join(t.upper() for t in self._device_types)}"
        if x.dtype not in _FAST_DTYPES:
            return f"{x.dtype} activations (the fast path is for float16/bfloat16)"
        if frames > MAX_FRAMES:
            return f"{frames} frames per video (the short-sequence attention is for ≤ {MAX_FRAMES})"
        if torch.compiler.is_compiling():
            return "the model is already inside torch.compile (e.g. TorchCompileModel)"
        return None

    def use(self, x: torch.Tensor, frames: int) -> bool:
        """mode "auto": the fast path wherever it can run; "off": always the plain path."""
        if self.mode == "off":
            return False
        reason = self.unavailable_reason(x, frames)
        if reason is not None:
            self._say(logging.INFO, f"AnimateFlow motion modules: plain path with ComfyUI's attention ({reason}).")
            return False
        return True

    def forward(self, layer: VanillaTemporalModule, x: torch.Tensor, frames: int,
                scale: float | torch.Tensor = 1.0) -> torch.Tensor:
        """The stand-in for `layer(x, frames, scale)`: the compiled graph for this shape when it is ready, else the
        plain path (and, the first time a shape is seen, its compile starts on the worker thread).

        `scale` is a number or a tensor that broadcasts over x (scale_schedule.LayerScales: (b·f, 1, 1, 1) per frame,
        (b·f, 1, h, w) with a region mask). The compiled graph takes it as a tensor input, so a new value never needs a
        new graph; a new shape of it is a new graph.
        """
        if not isinstance(scale, torch.Tensor) and scale == 0.0:
            return x
        shape = (layer.channels, tuple(x.shape), x.stride(), x.dtype, x.device, frames,
                 tuple(scale.shape) if isinstance(scale, torch.Tensor) else ())
        if shape in self._waiting:
            return layer(x, frames, scale)
        host_models.run_every_op()
        transformer = layer.temporal_transformer
        heads = transformer.transformer_blocks[0].attention_blocks[0].heads
        leaves, spec = tree_flatten(gather_params(transformer, x))
        tensors = [leaf for leaf in leaves if isinstance(leaf, torch.Tensor)]
        scale_tensor = self._scale_tensor(scale, x)
        key = (_tensor_signature(x), _tensor_signature(scale_tensor), frames, heads,
               tuple(_tensor_signature(leaf) if isinstance(leaf, torch.Tensor) else leaf for leaf in leaves))
        compiled = self._ready.get(key)
        if compiled is not None:
            try:
                out = compiled(x, scale_tensor, *tensors)
                return out[0] if isinstance(out, (tuple, list)) else out
            except torch.cuda.OutOfMemoryError:
                raise
            except Exception as error:  # e.g. an input whose layout differs from the compiled one
                self._fail(key, shape, x, frames, error, "its compiled graph failed")
        elif key not in self._failed:
            self._request(key, shape, x, scale_tensor, frames, heads, spec, leaves)
        return layer(x, frames, scale)

    def _scale_tensor(self, scale: float | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The scale as the graph's input: a given tensor in x's dtype on x's device, a number as one value per
        latent (cached, so a constant scale allocates nothing per call)."""
        if isinstance(scale, torch.Tensor):
            return scale.to(x.device, x.dtype)
        key = (float(scale), x.shape[0], x.dtype, x.device)
        cached = self._scales.get(key)
        if cached is None:
            cached = self._scales[key] = torch.full((x.shape[0], 1, 1, 1), float(scale), dtype=x.dtype,
                                                    device=x.device)
        return cached

    def _request(self, key: tuple, shape: tuple, x: torch.Tensor, scale: torch.Tensor, frames: int, heads: int,
                 spec, leaves: list) -> None:
        with self._lock:
            if key in self._pending or key in self._ready or key in self._failed:
                return
            self._waiting.add(shape)
            self._say(logging.INFO, "AnimateFlow motion modules: compiling the fast path for this model's shapes in "
                                    "the background; each shape runs the plain path until its graph is ready.")
            example = torch.empty_strided(x.shape, x.stride(), dtype=x.dtype, device=x.device)
            example_scale = torch.empty_strided(scale.shape, scale.stride(), dtype=scale.dtype, device=scale.device)
            self._pending[key] = compile_worker.submit(self._compile, key, shape, example, example_scale, frames,
                                                       heads, spec, leaves, torch.is_inference_mode_enabled())

    def _compile(self, key: tuple, shape: tuple, x: torch.Tensor, scale: torch.Tensor, frames: int, heads: int, spec,
                 leaves: list, inference: bool) -> None:
        """On the worker thread: trace and compile one shape, run it once where memory allows (first-launch tuning
        stays off the sampling thread), then publish it. Grad and inference mode are thread-local: the caller's
        (ComfyUI samples under inference mode, whose tensors nothing outside it may update) is set again here."""
        tensors = [leaf for leaf in leaves if isinstance(leaf, torch.Tensor)]
        slots = [isinstance(leaf, torch.Tensor) for leaf in leaves]
        started, paused = time.monotonic(), compile_worker.SAMPLING.paused_seconds()
        try:
            if _moved(tensors, x):
                raise _ModelMoved
            device_scope = torch.cuda.device(x.device) if x.device.type == "cuda" else contextlib.nullcontext()
            grad_mode = torch.inference_mode() if inference else torch.no_grad()
            with device_scope, grad_mode:
                attention = attention_kernel(x.device)

                def flat_math(x_, scale_, *tensors_):
                    given = iter(tensors_)
                    params = tree_unflatten([next(given) if slot else leaf for slot, leaf in zip(slots, leaves)],
                                            spec)
                    return transformer_math(x_, frames, scale_, heads, params, attention)

                x.normal_(generator=torch.Generator(device=x.device).manual_seed(_EXAMPLE_SEED))
                scale.fill_(1.0)
                cache = compile_cache.default_cache() if isinstance(self._cache, str) else self._cache
                kernel = f"{attention.__module__}.{attention.__name__}"
                entry = None if cache is None else cache.entry(x.device, (key, kernel))
                compiled = None if entry is None else cache.load(entry)
                if compiled is None:
                    compiler = self._compiler or (compile_worker.compile_graph if cache is None
                                                  else compile_worker.compile_portable)
                    compiled = compiler(flat_math, [x, scale, *tensors])
                    if entry is not None:
                        cache.store(entry, compiled)
                if _moved(tensors, x):
                    raise _ModelMoved
                if x.device.type != "cuda" or torch.cuda.mem_get_info(x.device)[0] > _TRIAL_RUN_MEMORY * x.nbytes:
                    compiled(x, scale, *tensors)
                    if x.device.type == "cuda":
                        torch.cuda.synchronize(x.device)
            with self._lock:
                self._ready[key] = compiled
                self._waiting.discard(shape)
                left = len(self._pending) - 1
            waited = compile_worker.SAMPLING.paused_seconds() - paused
            log.info("AnimateFlow motion modules: fast path ready for %s after %.1f s of compiling%s; %s.",
                     _describe(x, frames), time.monotonic() - started - waited,
                     f" (and {waited:.1f} s paused while sampling)" if waited >= 0.1 else "",
                     f"{left} more shape(s) of this model compiling" if left else "no more shapes compiling")
        except Exception as error:  # no Triton, no C compiler, an inductor bug: this shape stays on the plain path
            if isinstance(error, _ModelMoved) or _moved(tensors, x):
                # ComfyUI moved the model off the device while this shape waited (it offloads models between
                # prompts): not the shape's fault. The next call that finds the model back asks again.
                with self._lock:
                    self._waiting.discard(shape)
            else:
                self._fail(key, shape, x, frames, error, "it did not compile")
        finally:
            with self._lock:
                self._pending.pop(key, None)

    def _fail(self, key: tuple, shape: tuple, x: torch.Tensor, frames: int, error: Exception, what: str) -> None:
        with self._lock:
            self._failed[key] = f"{type(error).__name__}: {str(error).splitlines()[0][:300] if str(error) else ''}"
            self._ready.pop(key, None)
            self._waiting.add(shape)
        self._say(logging.WARNING, f"AnimateFlow motion modules: no fast path for {_describe(x, frames)}, {what} "
                                   f"({self._failed[key]}); that shape runs the plain path with ComfyUI's attention.")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every compile asked for so far has finished (benchmarks, tests); True when none is left."""
        with self._lock:
            futures = list(self._pending.values())
        concurrent.futures.wait(futures, timeout=timeout)
        with self._lock:
            return not self._pending

    def summary(self) -> dict[str, int]:
        """How many shapes are compiled, compiling and failed."""
        with self._lock:
            return {"ready": len(self._ready), "pending": len(self._pending), "failed": len(self._failed)}
