"""A CUDA fast path for the motion modules: the maths of `model.TemporalTransformer3D`, compiled per module shape.

Why a second path: on a GPU the eager module spends most of its time outside its FLOPs. Flash-attention kernels
built for long sequences run 16-frame attention slowly, norms, GEGLU and residual adds are separate passes over
the activations, and each attention moves them (b f) d c → (b d) f c and back. Here one module's transformer is
one compiled graph: the layout changes once on entry and once on exit (the norms, projections and feed-forward act
per token, so they run in the frame-major layout as well), q, k and v come from one GEMM, attention over at most
MAX_FRAMES frames is a Triton kernel of ours (triton_attention.py; batched matmuls and a softmax where Triton is
missing), and elementwise work fuses into neighbouring kernels.

Why compile in the background, and only between samplings: compiling the four shapes of an SD1.5 step takes
~30 s with cold caches (~25 s warm), ten times a short render. A `FastPath` (one per patched model, made by apply.py)
runs the plain path for a shape until that shape's graph is ready, compiles on a worker thread, and switches per
shape when it is. The graph is traced with make_fx and handed to inductor directly, not through torch.compile's
guards: a compiled graph is a plain callable for one shape, so the sampling thread never compiles and never waits.
Measured on an H100 (benchmarks/NOTES.md), a compile thread running beside sampling made a 3.2 s render take
7.3 s: every PyTorch op releases the interpreter lock and then waits for the compiling thread to give it back. So
the worker pauses at its next Python call whenever one of our models samples (`SAMPLING`, entered by an
OUTER_SAMPLE wrapper), for at most PAUSE_LIMIT_S per sampling: a render never waits on a compile, and one longer
than that compiles alongside and gains for the rest of it.

The plain path (model.py, ComfyUI's attention) stays the reference and what runs on CPU, under an outer
torch.compile, for a shape whose compile failed, and while a shape compiles; each reason is said once.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import sys
import threading
import time
from typing import Callable

import comfy.ops
import torch
import torch.nn.functional as F
from torch.utils._pytree import tree_flatten, tree_unflatten

from .model import TemporalTransformer3D, VanillaTemporalModule

log = logging.getLogger(__name__)

MODES = ("auto", "off")
MAX_FRAMES = 32
_FAST_DTYPES = (torch.float16, torch.bfloat16)
# A compile's trial run allocates about this many times the input (the GEGLU hidden layer is 8 channels per
# channel); it runs only where that much is free, so the first render never runs out of memory for it.
_TRIAL_RUN_MEMORY = 16
PAUSE_LIMIT_S = 60.0


def short_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """Softmax attention over a few frames as batched matmuls: (sequences, frames, heads·dim) in and out.

    Scores are only frames × frames per head, so the whole thing is a handful of small GEMMs and one fused
    softmax, where long-sequence kernels (flash, memory-efficient) spend most of their time on tiling overhead.
    Softmax runs in float32 like those kernels' accumulators.
    """
    sequences, frames, inner = q.shape
    dim = inner // heads
    q, k, v = (t.view(sequences, frames, heads, dim).transpose(1, 2) for t in (q, k, v))
    scores = (q @ k.transpose(-1, -2)) * dim ** -0.5
    weights = scores.float().softmax(dim=-1).to(v.dtype)
    return (weights @ v).transpose(1, 2).reshape(sequences, frames, inner)


def transformer_math(x: torch.Tensor, frames: int, scale: float | torch.Tensor, heads: int, params: tuple,
                     attention=short_attention) -> torch.Tensor:
    """TemporalTransformer3D's forward (scale and residual included) on plain tensors, in the (b d) f c layout.

    params = (group_norm, proj_in, blocks, proj_out) as built by `gather_params`; `scale` is a number or a tensor
    that broadcasts over (b·f, C, h, w) (Motion Scale Schedule's per-frame, per-region scales); `attention` is
    swappable so the benchmark can measure other kernels.
    """
    (gn_weight, gn_bias, groups, gn_eps), proj_in, blocks, proj_out = params
    bf, c, h, w = x.shape
    videos, tokens = bf // frames, h * w
    y = F.group_norm(x, groups, gn_weight, gn_bias, gn_eps)
    y = y.view(videos, frames, c, tokens).permute(0, 3, 1, 2).reshape(videos * tokens, frames, c)  # -> (b d) f c
    y = F.linear(y, *proj_in)
    for attentions, ((ff_weight, ff_bias, ff_eps), ff_in, ff_out) in blocks:
        for (ln_weight, ln_bias, ln_eps), pe, to_q, to_k, to_v, to_out in attentions:
            n = F.layer_norm(y, (c,), ln_weight, ln_bias, ln_eps) + pe[:frames].to(y.dtype)
            q, k, v = F.linear(n, torch.cat((to_q, to_k, to_v))).split(c, dim=-1)  # one GEMM for the three
            y = F.linear(attention(q, k, v, heads), *to_out) + y
        n = F.layer_norm(y, (c,), ff_weight, ff_bias, ff_eps)
        a, gate = F.linear(n, *ff_in).chunk(2, dim=-1)
        y = F.linear(a * F.gelu(gate), *ff_out) + y
    y = F.linear(y, *proj_out)
    y = y.view(videos, tokens, frames, c).permute(0, 2, 3, 1).reshape(bf, c, h, w)  # -> (b f) c h w
    return y * scale + x


def _weights(layer: torch.nn.Module, x: torch.Tensor) -> tuple:
    """The layer's weight and bias as the plain path would use them: as stored when they already sit on x's device
    in x's dtype with no patches pending, else through ComfyUI's cast (device move, dtype, LoRA/lowvram patches)."""
    weight, bias = layer.weight, layer.bias
    if (layer.weight_function or layer.bias_function or weight.device != x.device or weight.dtype != x.dtype
            or (bias is not None and (bias.device != x.device or bias.dtype != x.dtype))):
        return comfy.ops.cast_bias_weight(layer, x)
    return weight, bias


def gather_params(transformer: TemporalTransformer3D, x: torch.Tensor) -> tuple:
    """The transformer's tensors in the nested-tuple form `transformer_math` reads."""
    def norm(layer):
        return (*_weights(layer, x), layer.eps)

    blocks = []
    for block in transformer.transformer_blocks:
        attentions = tuple(
            (norm(ln), a.pos_encoder.pe[0].to(x.device), _weights(a.to_q, x)[0], _weights(a.to_k, x)[0],
             _weights(a.to_v, x)[0], _weights(a.to_out[0], x))
            for a, ln in zip(block.attention_blocks, block.norms))
        feed_forward = (norm(block.ff_norm), _weights(block.ff.net[0].proj, x), _weights(block.ff.net[2], x))
        blocks.append((attentions, feed_forward))
    gn = transformer.norm
    return ((*_weights(gn, x), gn.num_groups, gn.eps), _weights(transformer.proj_in, x), tuple(blocks),
            _weights(transformer.proj_out, x))


# Whether the Triton kernel builds and is right is a fact about a device, found once per process.
_attention_by_device: dict[str, Callable] = {}
_attention_lock = threading.Lock()


def attention_kernel(device: torch.device | str = "cuda") -> Callable:
    """The Triton short-sequence kernel once it has run and matched `short_attention` on this device; else
    `short_attention` itself (not CUDA, no Triton, or a kernel that fails to build), said once in the log."""
    device = torch.device(device)
    if device.type != "cuda":
        return short_attention
    name = str(device)
    with _attention_lock:
        if name not in _attention_by_device:
            _attention_by_device[name] = _probe_triton_attention(device)
        return _attention_by_device[name]


def _probe_triton_attention(device: torch.device) -> Callable:
    try:
        from . import triton_attention

        q, k, v = torch.randn(3, 64, 16, 320, device=device, dtype=torch.float16)
        expected = short_attention(q, k, v, 8)
        error = ((triton_attention.attention(q, k, v, 8) - expected).norm() / expected.norm()).item()
        if error < 1e-2:
            return triton_attention.attention
        log.warning("AnimateFlow motion modules: the Triton attention kernel is off on %s (relative error %.1e); "
                    "using batched matmuls.", device, error)
    except Exception as error:  # no Triton, or a kernel that does not build here
        log.warning("AnimateFlow motion modules: the Triton attention kernel is unavailable on %s (%s: %s); using "
                    "batched matmuls.", device, type(error).__name__, str(error).splitlines()[0][:200] if str(error)
                    else "")
    return short_attention


def compile_graph(fn: Callable, example_inputs: list[torch.Tensor]) -> Callable:
    """`fn` traced for these inputs' shapes (make_fx on fake tensors) and compiled by inductor: a callable that
    takes tensors of exactly those shapes and strides. No dynamo guards, so calling it never compiles."""
    from torch.fx.experimental.proxy_tensor import make_fx

    graph = make_fx(fn, tracing_mode="fake")(*example_inputs)
    return torch._inductor.compile(graph, list(example_inputs))


class SamplingGate:
    """Whether any of our models is sampling, and the compile worker's pause while one is.

    The worker traces its own Python calls (sys.settrace is per thread) and waits at the next one while a sampling
    runs, so it holds no interpreter time then. It never pauses where a lock others may need could be held: inside
    logging, imports or threading code. A pause ends when the samplings end or when the current one has run
    PAUSE_LIMIT_S, which also bounds any stall a paused worker could cause.
    """

    _UNSAFE = ("logging", "importlib", "threading", "queue", "concurrent", "multiprocessing", "subprocess")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._started = 0.0
        self._idle = threading.Event()
        self._idle.set()

    @contextlib.contextmanager
    def sampling(self):
        with self._lock:
            self._running += 1
            if self._running == 1:
                self._started = time.monotonic()
                self._idle.clear()
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1
                if self._running == 0:
                    self._idle.set()

    def _hold_back(self) -> float:
        """Seconds a compile should still wait; 0 when it may run."""
        if self._idle.is_set():
            return 0.0
        return max(0.0, self._started + PAUSE_LIMIT_S - time.monotonic())

    def trace(self, frame, event: str, arg):
        if event == "call" and not self._idle.is_set() and self._hold_back() > 0 and self._safe_to_pause(frame):
            sys.settrace(None)  # no tracing, and none of its cost to other threads, while paused
            try:
                while (left := self._hold_back()) > 0:
                    self._idle.wait(left)
            finally:
                sys.settrace(self.trace)
        return None

    def _safe_to_pause(self, frame) -> bool:
        while frame is not None and frame.f_code is not _gated_code:
            if frame.f_globals.get("__name__", "").split(".")[0] in self._UNSAFE:
                return False
            frame = frame.f_back
        return True

    def run(self, fn: Callable, *args):
        """`fn(*args)` on this thread with its Python calls gated."""
        sys.settrace(self.trace)
        try:
            return _gated(fn, *args)
        finally:
            sys.settrace(None)


def _gated(fn: Callable, *args):
    return fn(*args)


_gated_code = _gated.__code__
SAMPLING = SamplingGate()


def while_sampling(executor, *args, **kwargs):
    """OUTER_SAMPLE wrapper of every patched model: compiles wait while it samples."""
    with SAMPLING.sampling():
        return executor(*args, **kwargs)


_executor: concurrent.futures.ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _compile_executor() -> concurrent.futures.ThreadPoolExecutor:
    """One worker thread for every FastPath's compiles, so two patched models never compile at once and halve the
    sampling thread's share of the interpreter."""
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="animateflow-compile")
        return _executor


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
    a compiled shape serves all of them. `compiler` and `device_types` exist for tests: the CPU suite drives the
    same logic with a stand-in compiler.
    """

    def __init__(self, mode: str = "auto", *, compiler: Callable = compile_graph,
                 device_types: tuple[str, ...] = ("cuda",)):
        if mode not in MODES:
            raise ValueError(f"unknown fast path mode {mode!r}; choose one of {MODES}")
        self.mode = mode
        self._compiler = compiler
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
        comfy.ops.run_every_op()
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
            self._pending[key] = _compile_executor().submit(SAMPLING.run, self._compile, key, shape, example,
                                                            example_scale, frames, heads, spec, leaves,
                                                            torch.is_inference_mode_enabled())

    def _compile(self, key: tuple, shape: tuple, x: torch.Tensor, scale: torch.Tensor, frames: int, heads: int, spec,
                 leaves: list, inference: bool) -> None:
        """On the worker thread: trace and compile one shape, run it once where memory allows (first-launch tuning
        stays off the sampling thread), then publish it. Grad and inference mode are thread-local: the caller's
        (ComfyUI samples under inference mode, whose tensors nothing outside it may update) is set again here."""
        tensors = [leaf for leaf in leaves if isinstance(leaf, torch.Tensor)]
        slots = [isinstance(leaf, torch.Tensor) for leaf in leaves]
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

                x.normal_()
                scale.fill_(1.0)
                compiled = self._compiler(flat_math, [x, scale, *tensors])
                if _moved(tensors, x):
                    raise _ModelMoved
                if x.device.type != "cuda" or torch.cuda.mem_get_info(x.device)[0] > _TRIAL_RUN_MEMORY * x.nbytes:
                    compiled(x, scale, *tensors)
                    if x.device.type == "cuda":
                        torch.cuda.synchronize(x.device)
            with self._lock:
                self._ready[key] = compiled
                self._waiting.discard(shape)
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
