"""Compiled fast-path graphs kept across ComfyUI restarts, in ComfyUI's user folder (issue 27).

Why: each patched model compiles its shapes again after a restart (30–50 s on an H100, benchmarks/RESULTS.md),
so a restarted server renders at eager speed until a gap lets the compile finish. A graph compiled by
`torch._inductor.standalone_compile` can be saved with its kernels and loaded in milliseconds.

An entry's name hashes everything that decides whether a saved graph may run here: torch, Triton and CUDA
versions, the GPU and its compute capability, this pack's fast-path source, and the graph's own signature (input
shapes, strides, dtypes, frames, heads, parameter layout). Another torch, Triton, GPU or model shape therefore never
finds a wrong entry; it compiles and writes its own. An entry that cannot be read (truncated, corrupt, written by a
torch that reads it no more) is removed and compiled again, never an error. Writes go to a temporary name first,
so a crash mid-write leaves no half entry.

Off unless ANIMATEFLOW_COMPILE_CACHE=1: a cached graph comes from `standalone_compile` instead of the
`torch._inductor.compile` the measured fast path uses, and its speed and load time on a GPU are not measured yet
(benchmarks/RESULTS.md); on CPU a saved graph loads in ~10 ms and runs the same maths.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import threading
from pathlib import Path
from typing import Callable

import torch

log = logging.getLogger(__name__)

FORMAT = 1
SUFFIX = ".animateflow-graph"
_SOURCES = ("fast_math.py", "fast_kernels.py", "triton_attention.py", "compile_worker.py")


def environment(device: torch.device) -> dict:
    """What a saved graph depends on besides its own signature."""
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    here = Path(__file__).resolve().parent
    code = hashlib.sha256(b"".join((here / name).read_bytes() for name in _SOURCES if (here / name).exists()))
    env = {"format": FORMAT, "torch": torch.__version__, "triton": triton_version, "cuda": torch.version.cuda,
           "python": platform.python_version(), "device": device.type, "code": code.hexdigest()}
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        env["capability"] = list(torch.cuda.get_device_capability(device))
    return env


class InductorArtifacts:
    """Saves and loads what `torch._inductor.standalone_compile` returns (a CompiledArtifact)."""

    @staticmethod
    def can_save(compiled) -> bool:
        return callable(getattr(compiled, "save", None))

    @staticmethod
    def save(compiled, path: Path) -> None:
        compiled.save(path=str(path), format="binary")

    @staticmethod
    def load(path: Path) -> Callable:
        from torch._inductor import CompiledArtifact

        return CompiledArtifact.load(path=str(path), format="binary")


class CompileCache:
    """One folder of saved graphs. `serializer` exists for tests (the CPU suite uses a stand-in)."""

    def __init__(self, folder: Path, serializer=InductorArtifacts()):
        self.folder = Path(folder)
        self.serializer = serializer
        self._said: set[str] = set()
        self._lock = threading.Lock()

    def entry(self, device: torch.device, signature) -> Path:
        text = json.dumps([environment(device), signature], sort_keys=True, default=str)
        return self.folder / (hashlib.sha256(text.encode()).hexdigest()[:40] + SUFFIX)

    def load(self, path: Path) -> Callable | None:
        """The saved graph, or None when there is none or it cannot be read (then it is removed)."""
        if not path.is_file():
            return None
        try:
            return self.serializer.load(path)
        except Exception as error:  # truncated, corrupt, or from a torch that cannot read it: compile again
            reason = str(error).splitlines()[0][:200] if str(error) else ""
            self._say(f"AnimateFlow motion modules: a saved fast-path graph could not be read and will be compiled "
                      f"again ({path.name}: {type(error).__name__}: {reason}).")
            path.unlink(missing_ok=True)
            return None

    def store(self, path: Path, compiled) -> None:
        """Save `compiled` under `path` if it can be saved; a failure costs only the saving."""
        if not self.serializer.can_save(compiled):
            return
        partial = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.partial")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.serializer.save(compiled, partial)
            os.replace(partial, path)
        except Exception as error:  # a full disk, a read-only folder: the graph still runs, it is just not kept
            partial.unlink(missing_ok=True)
            reason = str(error).splitlines()[0][:200] if str(error) else ""
            self._say(f"AnimateFlow motion modules: could not save a compiled fast-path graph in {self.folder} "
                      f"({type(error).__name__}: {reason}); it will compile again after a restart.")

    def _say(self, message: str) -> None:
        with self._lock:
            if message in self._said:
                return
            self._said.add(message)
        log.warning(message)


_default: list[CompileCache | None] = []


def default_cache() -> CompileCache | None:
    """The cache in ComfyUI's user folder (user/animateflow/compiled), or None unless turned on."""
    if not _default:
        if os.environ.get("ANIMATEFLOW_COMPILE_CACHE", "0") != "1":
            _default.append(None)
        else:
            from ..host import folders

            _default.append(CompileCache(Path(folders.user_dir()) / "animateflow" / "compiled"))
    return _default[0]
