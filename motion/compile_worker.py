"""The fast path's compiles: one worker thread for all of them, paused while one of our models samples.

Why a worker: compiling the four shapes of an SD1.5 step takes 30–50 s, ten times a short render, so the sampling
thread runs the plain path and never compiles. Why the pause: measured on an H100 (benchmarks/NOTES.md), a compile
thread running beside sampling made a 3.2 s render take 7.3 s: every PyTorch op releases the interpreter lock and
then waits for the compiling thread to give it back. So the worker traces its own Python calls (`sys.settrace` is
per thread) and waits at the next one while a sampling runs (`SAMPLING`, entered by the OUTER_SAMPLE wrapper
`while_sampling`), for at most PAUSE_LIMIT_S of one sampling: a render never waits on a compile, and one longer than
that compiles alongside and gains for the rest of it.

A graph is traced with make_fx and handed to inductor directly, not through torch.compile's guards: a compiled
graph is a plain callable for one shape. Both are torch internals; tests/test_fast_path_torch_pins.py pins them.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import sys
import threading
import time
from typing import Callable

import torch

PAUSE_LIMIT_S = 60.0


def compile_graph(fn: Callable, example_inputs: list[torch.Tensor]) -> Callable:
    """`fn` traced for these inputs' shapes (make_fx on fake tensors) and compiled by inductor: a callable that
    takes tensors of exactly those shapes and strides. No dynamo guards, so calling it never compiles."""
    from torch.fx.experimental.proxy_tensor import make_fx

    graph = make_fx(fn, tracing_mode="fake")(*example_inputs)
    return torch._inductor.compile(graph, list(example_inputs))


def compile_portable(fn: Callable, example_inputs: list[torch.Tensor]) -> Callable:
    """As `compile_graph`, through `torch._inductor.standalone_compile`: a CompiledArtifact that can be saved with its
    kernels and loaded after a restart (compile_cache.py)."""
    from torch.fx.experimental.proxy_tensor import make_fx

    graph = make_fx(fn, tracing_mode="fake")(*example_inputs)
    return torch._inductor.standalone_compile(graph, list(example_inputs), dynamic_shapes="from_example_inputs")


class SamplingGate:
    """Whether any of our models is sampling, and the compile worker's pause while one is.

    The worker waits at its next Python call while a sampling runs, so it holds no interpreter time then. It never
    pauses where a lock others may need could be held: inside logging, imports or threading code. A pause ends when
    the samplings end or when the current one has run PAUSE_LIMIT_S, which also bounds any stall a paused worker
    could cause.
    """

    _UNSAFE = ("logging", "importlib", "threading", "queue", "concurrent", "multiprocessing", "subprocess")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._started = 0.0
        self._idle = threading.Event()
        self._idle.set()
        self._paused = 0.0  # seconds the worker has spent paused, in all

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
            paused = time.monotonic()
            try:
                while (left := self._hold_back()) > 0:
                    self._idle.wait(left)
            finally:
                self._paused += time.monotonic() - paused
                sys.settrace(self.trace)
        return None

    def paused_seconds(self) -> float:
        """How long the worker has waited for samplings so far (a compile's wall time minus this is its own)."""
        return self._paused

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


def submit(fn: Callable, *args) -> concurrent.futures.Future:
    """`fn(*args)` on the worker, gated by SAMPLING."""
    return _compile_executor().submit(SAMPLING.run, fn, *args)
