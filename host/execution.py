"""Running nodes: interrupts, progress bars, blocked outputs, launch flags, and V3 node classes run outside the
host's executor (the in-process test host, the GPU benchmark)."""

from __future__ import annotations

from typing import Any, Callable

import comfy.model_management
import comfy.utils
from comfy_api.latest import io

from .needs import Need

NEEDS = (
    Need("comfy.model_management:throw_exception_if_processing_interrupted", "Cancel during long video work"),
    Need("comfy.model_management:InterruptProcessingException", "Cancel during long video work"),
    Need("comfy.utils:ProgressBar", "progress bars of Load Video and Video Combine", params=("total",)),
    Need("comfy.utils:ProgressBar.update_absolute", "progress bars of Load Video and Video Combine",
         params=("value", "total")),
    Need("comfy_execution.graph_utils:ExecutionBlocker", "Load Video's unused output explaining itself"),
    Need("comfy.cli_args:args.disable_metadata", "--disable-metadata in Video Combine"),
    Need("comfy_api.latest:io.ComfyNode.PREPARE_CLASS_CLONE", "running our nodes in-process (tests, benchmarks)"),
)


def check_interrupt() -> None:
    """Raise the host's interrupt exception when the user pressed Cancel."""
    comfy.model_management.throw_exception_if_processing_interrupted()


def progress(total: int) -> Callable[[int, int], None]:
    """A progress reporter `report(done, total)` on the node running now (a progress bar in the editor)."""
    bar = comfy.utils.ProgressBar(total)
    return lambda done, of: bar.update_absolute(done, of)


def blocked_output(message: str) -> Any:
    """An output value that stops any node wired to it, with `message` as the reason."""
    from comfy_execution.graph_utils import ExecutionBlocker

    return ExecutionBlocker(message)


def metadata_disabled() -> bool:
    """Whether ComfyUI runs with --disable-metadata (no workflow embedded in saved files)."""
    from comfy.cli_args import args

    return bool(args.disable_metadata)


def executor_class_clone(node_cls: type[io.ComfyNode], hidden: dict[Any, Any] | None = None) -> type[io.ComfyNode]:
    """The per-run clone of a V3 node class with its hidden inputs set, as the host's executor makes it.

    Bridges `ComfyNode.PREPARE_CLASS_CLONE`'s argument: ComfyUI 0.3.x takes the hidden inputs themselves; newer
    hosts take the executor's `V3Data` dict (`{"hidden_inputs": ...}`), told apart by `io.V3Data`, which only those
    hosts define.
    """
    hidden = dict(hidden or {})
    if hasattr(io, "V3Data"):
        return node_cls.PREPARE_CLASS_CLONE({"hidden_inputs": hidden})
    return node_cls.PREPARE_CLASS_CLONE(hidden)
