"""What each window call sees of the conditioning: per-frame conds and ControlNet hints cut to the call's frames.

A conditioning item is per-frame when its first dimension equals the video's frame count (Prompt Travel's cross
attention and pooled output, a ControlNet image batch); everything else is shared by all frames and passed as is.
A batch of another size is neither: the host would silently repeat or cut it, and under windows every window would
restart it from its first frame, so `check_frame_counts` refuses it before the first step of every sampling of a
model we patched, windowed or not (model_checks.py).

ControlNet hints are prepared by the host (resized to the latent, preprocessed, VAE-encoded for some models) the
first time a control runs on a batch. Preparation is per frame, so a frame prepared for one window is the same for
every later window and step: `ControlHints` keeps what the host prepared, per frame, for the rest of the run and
hands each later call its frames ready-made, instead of cutting the original again and making the host prepare it
again per window per step. Host attributes touched: `cond_hint_original`, `extra_concat_orig`, `cond_hint`,
`previous_controlnet`, and T2I adapters' `control_input` (pinned by tests/test_host_internals_context.py).
"""

from __future__ import annotations

import torch

from .context_fuse import FrameWindow
from .errors import FrameCountError

def is_per_frame(tensor, frames: int) -> bool:
    return isinstance(tensor, torch.Tensor) and tensor.ndim > 0 and tensor.size(0) == frames


def _batched(tensor) -> int | None:
    """The batch size of a conditioning tensor that holds more than one entry, else None."""
    if isinstance(tensor, torch.Tensor) and tensor.ndim > 0 and tensor.size(0) > 1:
        return int(tensor.size(0))
    return None


def _controls(control):
    while control is not None:
        yield control
        control = getattr(control, "previous_controlnet", None)


def _cond_tensors(cond: dict):
    """(name, tensor) of every conditioning item that could be per-frame; ControlNets are checked on their own."""
    for key, value in cond.items():
        if key == "control":
            continue
        if key == "model_conds" and isinstance(value, dict):
            for name, item in value.items():
                yield name, getattr(item, "cond", None)
        else:
            yield key, value if isinstance(value, torch.Tensor) else getattr(value, "cond", None)


def check_frame_counts(conds: dict[str, list[dict]], frames: int) -> None:
    """Refuse, before the first step, a per-frame batch whose length is neither 1 nor the latent's frame count."""
    for name, items in conds.items():
        for cond in items or []:
            for key, tensor in _cond_tensors(cond):
                count = _batched(tensor)
                if count is not None and count != frames:
                    raise FrameCountError(
                        f"the {name} conditioning holds {count} per-frame entries ({key}) but the latent batch has "
                        f"{frames} frames", f"make the per-frame conditioning (a prompt schedule's frames) {frames} "
                        f"frames long, or the latent batch size {count}.", input=name)
            for control in _controls(cond.get("control")):
                hints = [getattr(control, "cond_hint_original", None)] + list(getattr(control, "extra_concat_orig", []))
                for hint in hints:
                    count = _batched(hint)
                    if count is not None and count != frames:
                        raise FrameCountError(
                            f"a ControlNet image batch ({type(control).__name__} on the {name} conditioning) holds "
                            f"{count} frames but the latent batch has {frames}", f"give the ControlNet {frames} "
                            "images (one per frame) or a single image for all frames.", input=name)


def resize_cond(cond_in: list[dict] | None, frames: int, window: FrameWindow, hints: ControlHints,
                device=None) -> list[dict] | None:
    """The conditioning list for a call over `window`'s frames."""
    if cond_in is None:
        return None
    resized = []
    for cond in cond_in:
        out = dict(cond)
        for key, item in cond.items():
            if isinstance(item, torch.Tensor):
                out[key] = window.get_tensor(item, device) if is_per_frame(item, frames) else item.to(device)
            elif key == "control":
                hints.cut(item, window, frames)
            elif key == "model_conds" and isinstance(item, dict):
                out[key] = {name: _cut_model_cond(value, window, frames, device) for name, value in item.items()}
        resized.append(out)
    return resized


def _cut_model_cond(value, window: FrameWindow, frames: int, device):
    """CONDRegular and its kin keep their tensor in `.cond` and copy themselves with `_copy_with`."""
    cond = getattr(value, "cond", None)
    if is_per_frame(cond, frames):
        return value._copy_with(window.get_tensor(cond, device))
    return value


class _Prepared:
    """The host-prepared hint frames of one control, kept on the CPU so device memory stays flat in frame count."""

    def __init__(self, frames: int, sample: torch.Tensor):
        self.frame_shape = tuple(sample.shape[1:])
        self.device, self.dtype = sample.device, sample.dtype
        # The host's layout (a channels-last view for image hints): convolutions round differently on another one.
        layout = torch.channels_last if sample.ndim == 4 and not sample.is_contiguous() and sample.is_contiguous(
            memory_format=torch.channels_last) else torch.contiguous_format
        self.frames = torch.zeros((frames,) + self.frame_shape, dtype=sample.dtype).contiguous(memory_format=layout)
        self.filled = torch.zeros(frames, dtype=torch.bool)

    def store(self, window: FrameWindow, prepared: torch.Tensor) -> None:
        if tuple(prepared.shape[1:]) == self.frame_shape:
            index = window.index("cpu")
            self.frames.index_copy_(0, index, prepared[: window.context_length].to("cpu", self.dtype))
            self.filled[index] = True

    def lookup(self, window: FrameWindow) -> torch.Tensor | None:
        index = window.index("cpu")
        if not bool(self.filled[index].all()):
            return None
        return self.frames[index].to(self.device)


class ControlHints:
    """Per-frame ControlNet hints cut to each call's frames, prepared by the host once per frame per run."""

    def __init__(self):
        self._originals: dict[int, tuple] = {}
        self._prepared: dict[int, _Prepared] = {}
        self._pending: dict[int, tuple] = {}

    def cut(self, control, window: FrameWindow, frames: int) -> None:
        for ctrl in _controls(control):
            _, hint, concat = self._originals.setdefault(
                id(ctrl), (ctrl, ctrl.cond_hint_original, list(ctrl.extra_concat_orig)))
            hint_per_frame = is_per_frame(hint, frames)
            if not hint_per_frame and not any(is_per_frame(c, frames) for c in concat):
                continue  # one hint for all frames: the host prepares it once and broadcasts it itself
            ctrl.cond_hint_original = window.get_tensor(hint) if hint_per_frame else hint
            ctrl.extra_concat_orig = [window.get_tensor(c) if is_per_frame(c, frames) else c for c in concat]
            prepared = self._prepared.get(id(ctrl))
            ready = prepared.lookup(window) if prepared is not None else None
            ctrl.cond_hint = ready
            if hasattr(ctrl, "control_input"):
                ctrl.control_input = None  # T2I adapters derive it from cond_hint
            if ready is None:
                self._pending[id(ctrl)] = (ctrl, window, frames)

    def keep_prepared(self) -> None:
        """After a call: keep the frames the host prepared for controls that had none ready."""
        for ctrl, window, frames in self._pending.values():
            prepared = getattr(ctrl, "cond_hint", None)
            if not isinstance(prepared, torch.Tensor) or prepared.shape[0] < window.context_length:
                continue  # the control was outside its step range, or not a hint-per-frame control after all
            if id(ctrl) not in self._prepared:
                self._prepared[id(ctrl)] = _Prepared(frames, prepared)
            self._prepared[id(ctrl)].store(window, prepared)
        self._pending.clear()

    def restore(self) -> None:
        """Put every control back as the user's conditioning had it (after each model evaluation)."""
        for ctrl, hint, concat in self._originals.values():
            ctrl.cond_hint_original = hint
            ctrl.extra_concat_orig = concat
            ctrl.cond_hint = None
            if hasattr(ctrl, "control_input"):
                ctrl.control_input = None
        self._originals.clear()
        self._pending.clear()

    def forget(self) -> None:
        """End of a sampling run: the next run may bring other images under the same control objects."""
        self.restore()
        self._prepared.clear()
