"""The CONTEXT_OPTIONS value: what the Context Options node hands to Apply to Model.

Kept free of ComfyUI imports so the schedule maths that reads it stays testable on tensors alone.
Validation lives here, not in the node, so every way of building options gets the same clear errors.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ContextOptionsError

SCHEDULES = ("uniform", "static", "looped")
FUSE_METHODS = ("pyramid", "flat", "gaussian", "overwrite")


@dataclass(frozen=True)
class ContextOptions:
    context_length: int = 16
    context_stride: int = 1
    context_overlap: int = 4
    closed_loop: bool = False
    schedule: str = "uniform"
    fuse_method: str = "pyramid"
    freenoise: bool = False
    max_batched_windows: int = 1
    spread_over_gpus: bool = False

    def __post_init__(self) -> None:
        if self.context_length < 2:
            raise ContextOptionsError(f"context_length must be at least 2 (got {self.context_length})",
                                      "16 is what the motion modules were trained on.", input="context_length")
        if self.context_stride < 1:
            raise ContextOptionsError(f"context_stride must be at least 1 (got {self.context_stride})",
                                      "1 runs no strided windows.", input="context_stride")
        overlap = self.resolved_overlap
        if not 0 <= overlap < self.context_length:
            raise ContextOptionsError(f"context_overlap is {self.context_overlap}",
                                      "set it to -1 (a quarter of the length) or between 0 and context_length - 1 = "
                                      f"{self.context_length - 1}.", input="context_overlap")
        if self.max_batched_windows < 0:
            raise ContextOptionsError(f"max_batched_windows is {self.max_batched_windows}",
                                      "set it to 0 (auto: as many as keep peak memory within 3% of one window's) "
                                      "or a positive limit.", input="max_batched_windows")
        if self.schedule not in SCHEDULES:
            raise ContextOptionsError(f"unknown schedule {self.schedule!r}", f"choose one of {', '.join(SCHEDULES)}.",
                                      input="schedule")
        if self.fuse_method not in FUSE_METHODS:
            raise ContextOptionsError(f"unknown fuse_method {self.fuse_method!r}",
                                      f"choose one of {', '.join(FUSE_METHODS)}.", input="fuse_method")

    @property
    def resolved_overlap(self) -> int:
        """The original extension's `Overlap = -1` means a quarter of the context length."""
        return self.context_length // 4 if self.context_overlap == -1 else self.context_overlap

    def describe(self) -> str:
        """The settings as a user reads them on the node, for error messages."""
        return (f"context_length {self.context_length}, context_overlap {self.resolved_overlap}, "
                f"context_stride {self.context_stride}, schedule {self.schedule}, closed_loop {self.closed_loop}, "
                f"fuse_method {self.fuse_method}")


def require_context_options(value: object) -> ContextOptions:
    """Other packs name their type CONTEXT_OPTIONS too, so the editor lets their node connect here: say so plainly."""
    if not isinstance(value, ContextOptions):
        raise ContextOptionsError(
            f"context_options got {type(value).__module__}.{type(value).__name__}, not this pack's context options",
            "connect this pack's (AnimateFlow) context options node instead.", input="context_options")
    return value
