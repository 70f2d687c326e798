"""Context windows as index sets over the frame axis, and the per-frame fuse of their predictions.

No ComfyUI imports: the handler and the tests use the same code on plain tensors.

The weighted fuse adds each window's prediction times its position weights into a per-frame sum and divides by the
per-frame total weight, in the same order and with the same dtypes as the leading pack, so the same windows give the
same bits. Sums go through `index_add_`: a window may hold a frame twice (dilated windows longer than the video wrap
around), and indexed `+=` would keep only one of the two contributions.
"""

from __future__ import annotations

import torch

from . import context_schedules


class FrameWindow:
    """Frame indices of one window (or of several windows batched into one call, concatenated)."""

    def __init__(self, indices: list[int]):
        self.index_list = [int(i) for i in indices]
        self.context_length = len(self.index_list)
        self._index: dict[torch.device, torch.Tensor] = {}
        # Overwrite keeps, per frame, the window's last position that holds it.
        last = {frame: pos for pos, frame in enumerate(self.index_list)}
        self._overwrite = (list(last), list(last.values()))

    def index(self, device) -> torch.Tensor:
        device = torch.device(device)
        if device not in self._index:
            self._index[device] = torch.tensor(self.index_list, dtype=torch.long, device=device)
        return self._index[device]

    def get_tensor(self, full: torch.Tensor, device=None) -> torch.Tensor:
        """The window's frames of a per-frame tensor (frames first), in window order. Indexing (not index_select)
        keeps the memory layout: a ControlNet image batch is a channels-last view, and convolutions round
        differently on another layout, so windows would not reproduce the unwindowed result."""
        out = full[self.index(full.device)]
        return out if device is None else out.to(device)

    def add_window(self, full: torch.Tensor, to_add: torch.Tensor) -> torch.Tensor:
        """Add a window's per-position values into the per-frame tensor, in place; repeated frames add up."""
        return full.index_add_(0, self.index(full.device), to_add.to(full.dtype))

    def overwrite(self, full: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """Put the window's values into the per-frame tensor, in place, replacing what earlier windows put there."""
        frames, positions = self._overwrite
        device = full.device
        return full.index_copy_(0, torch.tensor(frames, device=device),
                                values.index_select(0, torch.tensor(positions, device=device)).to(full.dtype))

    @classmethod
    def joined(cls, windows: list[FrameWindow]) -> FrameWindow:
        """One window holding several windows' frames back to back: the batch of one batched model call."""
        return cls([i for w in windows for i in w.index_list])


class UncoveredFramesError(RuntimeError):
    """Frames that no window held: they would have divided by zero."""


class WindowFuse:
    """Per-frame sums of window predictions for each output of a model evaluation (cond, uncond, ...)."""

    def __init__(self, method: str, x_in: torch.Tensor, outputs: int):
        self.method = method
        frames = x_in.shape[0]
        count_shape = (frames,) + (1,) * (x_in.ndim - 1)
        self.sums = [torch.zeros_like(x_in) for _ in range(outputs)]
        self.counts = [torch.zeros(count_shape, device=x_in.device) for _ in range(outputs)]
        self._weights: dict[int, torch.Tensor] = {}

    def _weights_for(self, length: int, ndim: int, device) -> torch.Tensor:
        if length not in self._weights:
            weights = torch.Tensor(context_schedules.fuse_weights(self.method, length)).to(device=device)
            self._weights[length] = weights.reshape((length,) + (1,) * (ndim - 1))
        return self._weights[length]

    def add(self, window: FrameWindow, outputs: list[torch.Tensor]) -> None:
        for total, count, out in zip(self.sums, self.counts, outputs):
            if self.method == "overwrite":
                window.overwrite(total, out)
                count.index_fill_(0, window.index(count.device), 1.0)
            else:
                weights = self._weights_for(window.context_length, out.ndim, total.device)
                window.add_window(total, out * weights)
                window.add_window(count, weights)

    def result(self) -> list[torch.Tensor]:
        """The fused predictions; refuses (rather than divide by zero) if a frame was in no window."""
        for count in self.counts:
            uncovered = (count.reshape(count.shape[0]) <= 0).nonzero().flatten().tolist()
            if uncovered:
                raise UncoveredFramesError(f"frames {uncovered} were in no context window")
        if self.method == "overwrite":
            return self.sums
        for total, count in zip(self.sums, self.counts):
            total /= count
        return self.sums
