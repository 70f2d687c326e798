"""Which attention kernel the fast path compiles in: our Triton kernel where it builds and is right, else matmuls.

Whether the Triton kernel builds and matches the matmul reference is a fact about a device, found once per process
(a small probe run) and said once in the log when the answer is no.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable

import torch

from .fast_math import short_attention

log = logging.getLogger(__name__)

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

        # A private generator: the probe runs on the compile worker, and a draw from the global CUDA generator
        # there would move the seed stream of whatever samples on the main thread.
        gen = torch.Generator(device=device).manual_seed(0)
        q, k, v = torch.randn(3, 64, 16, 320, device=device, dtype=torch.float16, generator=gen)
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
