"""Motion over time and space: motion_scale per frame (keyframes or a list), per UNet block, and per region (a mask).

A motion module adds its output to its input (the residual); motion_scale multiplies that output. Here the
multiplier of one module call is

    motion_scale × schedule(frame) × block multiplier (down / mid / up) × mask(frame, pixel)

with the mask resized to the block's resolution. Frames are the video's own frame numbers, also inside a context
window (the window's frame indices come from ComfyUI's `transformer_options["context_window"]`). Constant
factors stay a Python float, so a plain motion_scale costs nothing extra.

No ComfyUI imports: the maths is testable on tensors alone.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ..host import transformer_options as keys
from .errors import MotionScaleError

INTERPOLATIONS = ("linear", "ease_in_out", "hold")
BLOCKS = ("down", "mid", "up")
_PAIR = re.compile(r"^\s*(-?\d+)\s*:\s*(\S+)\s*$")


def _number(text: str, what: str, input: str = "schedule") -> float:
    try:
        value = float(text)
    except ValueError:
        raise MotionScaleError(f"{what} {text!r} is not a number", "write e.g. '0: 1.0, 16: 0.5'.",
                               input=input) from None
    if not math.isfinite(value) or value < 0:
        raise MotionScaleError(f"{what} is {text!r}", "enter a finite number ≥ 0.", input=input)
    return value


def _unknown_interpolation(name: str):
    raise MotionScaleError(f"unknown interpolation {name!r}", f"choose one of {', '.join(INTERPOLATIONS)}.",
                           input="interpolation")


def parse_schedule(text: str) -> tuple[tuple[int, float], ...]:
    """Keyframes from 'frame: scale' pairs ('0: 1.0, 16: 0.5'), or from a plain list ('1.0, 0.8, 0.6') whose i-th
    value is frame i's. Items are separated by commas, semicolons or new lines; an empty text is scale 1."""
    items = [item for item in re.split(r"[,;\n]", text) if item.strip()]
    if not items:
        return ((0, 1.0),)
    pairs = [_PAIR.match(item) for item in items]
    if all(pairs):
        keyframes = {}
        for match in pairs:
            frame = int(match[1])
            if frame < 0:
                raise MotionScaleError(f"keyframe {frame} is negative", "frames count from 0.", input="schedule")
            if frame in keyframes:
                raise MotionScaleError(f"frame {frame} has two keyframes", "keep one.", input="schedule")
            keyframes[frame] = _number(match[2], f"the scale of frame {frame}")
        return tuple(sorted(keyframes.items()))
    if any(pairs):
        raise MotionScaleError("schedule mixes 'frame: scale' pairs and plain values", "use one form.",
                               input="schedule")
    return tuple((i, _number(item.strip(), f"value {i}")) for i, item in enumerate(items))


def values_from_list(values) -> tuple[tuple[int, float], ...]:
    """Keyframes from a FLOAT list or batch (one value per frame), e.g. another node's float list output."""
    if isinstance(values, torch.Tensor):
        values = values.detach().flatten().tolist()
    elif isinstance(values, (int, float)):
        values = [values]
    values = list(values)
    if not values:
        raise MotionScaleError("frame_scales is an empty list", "give one value per frame.", input="frame_scales")
    return tuple((i, _number(str(float(v)), f"frame_scales value {i}", "frame_scales")) for i, v in enumerate(values))


def interpolate(keyframes: tuple[tuple[int, float], ...], interpolation: str, frames: torch.Tensor) -> torch.Tensor:
    """The schedule at each of `frames` (frame numbers): held before the first and after the last keyframe,
    between two keyframes linear, cosine ease-in-out, or held at the earlier one."""
    if interpolation not in INTERPOLATIONS:
        _unknown_interpolation(interpolation)
    at = torch.as_tensor(frames, dtype=torch.float64)
    keys = torch.tensor([k for k, _ in keyframes], dtype=torch.float64)
    vals = torch.tensor([v for _, v in keyframes], dtype=torch.float64)
    right = torch.searchsorted(keys, at, right=True).clamp(1, len(keys) - 1) if len(keys) > 1 else None
    if right is None:
        return vals.expand(at.shape).clone()
    left = right - 1
    span = keys[right] - keys[left]
    t = ((at - keys[left]) / span).clamp(0, 1)
    if interpolation == "ease_in_out":
        t = (1 - torch.cos(math.pi * t)) / 2
    elif interpolation == "hold":
        t = (at >= keys[right]).double()
    out = vals[left] + (vals[right] - vals[left]) * t
    return torch.where(at <= keys[0], vals[0], torch.where(at >= keys[-1], vals[-1], out))


def resize_mask(mask: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """A (frames, H, W) mask at a block's (height, width): area-averaged when shrinking, bilinear otherwise."""
    m = mask[:, None].to(torch.float32)
    if m.shape[-2] >= height and m.shape[-1] >= width:
        return F.interpolate(m, size=(height, width), mode="area")
    return F.interpolate(m, size=(height, width), mode="bilinear", align_corners=False)


@dataclass(frozen=True)
class MotionScaleSchedule:
    """The ANIMATEFLOW_MOTION_SCALE value: what the Motion Scale Schedule node hands to Apply Motion Module."""

    keyframes: tuple[tuple[int, float], ...] = ((0, 1.0),)
    interpolation: str = "linear"
    down: float = 1.0
    mid: float = 1.0
    up: float = 1.0
    mask: torch.Tensor | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.interpolation not in INTERPOLATIONS:
            _unknown_interpolation(self.interpolation)
        for name in BLOCKS:
            _number(str(getattr(self, name)), name, name)
        if self.mask is not None:
            mask = self.mask
            if mask.ndim == 2:
                mask = mask[None]
            if mask.ndim != 3 or mask.shape[0] < 1 or not torch.isfinite(mask).all() or (mask < 0).any():
                raise MotionScaleError(f"mask has shape {tuple(self.mask.shape)} or values that are not finite "
                                       "and ≥ 0", "connect a MASK (frames × height × width) of finite values ≥ 0.",
                                       input="mask")
            object.__setattr__(self, "mask", mask.detach().float().cpu())

    @property
    def values(self) -> tuple[float, ...]:
        return tuple(v for _, v in self.keyframes)

    def block(self, name: str) -> float:
        return getattr(self, name)

    def frame_scales(self, frames) -> torch.Tensor:
        return interpolate(self.keyframes, self.interpolation, torch.as_tensor(frames))

    def never_moves(self) -> bool:
        """True when every frame, block and pixel gets scale 0: the motion module changes nothing."""
        return (all(v == 0 for v in self.values) or all(self.block(b) == 0 for b in BLOCKS)
                or (self.mask is not None and not bool(self.mask.any())))


class LayerScales:
    """The multiplier of each motion module call, as a float where it is constant and a tensor where it varies.

    `blocks` maps id(module) to "down", "mid" or "up" (the module's place in the UNet).
    """

    def __init__(self, motion_scale: float, schedule: MotionScaleSchedule | None, blocks: dict[int, str]):
        self.motion_scale = float(motion_scale)
        self.schedule = schedule
        self.blocks = blocks
        self._masks: dict[tuple, torch.Tensor] = {}
        constant = schedule is None or (len(set(schedule.values)) == 1 and schedule.mask is None)
        self._per_frame = not constant
        self._constant = {name: self.motion_scale * (1.0 if schedule is None else schedule.values[0] * schedule.block(name))
                          for name in BLOCKS}

    def never_moves(self) -> bool:
        return self.motion_scale == 0 or (self.schedule is not None and self.schedule.never_moves())

    def __call__(self, layer, x: torch.Tensor, frames: int, transformer_options: dict) -> float | torch.Tensor:
        block = self.blocks.get(id(layer), "down")
        if not self._per_frame:
            return self._constant[block]
        indices = call_frames(transformer_options, frames, x.shape[0])
        schedule = self.schedule
        per_frame = schedule.frame_scales(indices).to(torch.float32) * (self.motion_scale * schedule.block(block))
        scale = per_frame.view(len(indices), 1, 1, 1).to(x.device)
        if schedule.mask is not None:
            scale = scale * self._mask(x.shape[-2], x.shape[-1], x.device)[torch.as_tensor(indices).clamp(
                max=schedule.mask.shape[0] - 1)]
        return scale.repeat(x.shape[0] // len(indices), 1, 1, 1).to(x.dtype)

    def _mask(self, height: int, width: int, device) -> torch.Tensor:
        key = (height, width, str(device))
        if key not in self._masks:
            self._masks[key] = resize_mask(self.schedule.mask, height, width).to(device)
        return self._masks[key]


def call_frames(transformer_options: dict, frames: int, batch: int) -> list[int]:
    """The video frame numbers of one video's frames in this model call, in batch order: the context window's (or,
    when several windows share the call, all of theirs one after the other), else 0..frames-1."""
    window = transformer_options.get(keys.CONTEXT_WINDOW)
    indices = getattr(window, "index_list", None)
    if indices is not None and len(indices) % frames == 0 and batch % len(indices) == 0:
        return list(indices)
    return list(range(frames))
