"""Prompt travel: a keyframed prompt schedule turned into one conditioning per frame, as the original does it.

The text follows sd-webui-animatediff's format: head lines, then `frame: prompt` lines, then tail lines; each
keyframe's prompt is `head, prompt, tail`. Beside it we accept what users of the leading ComfyUI packs paste
(`"0": "prompt",` lines, FizzNodes / batch-prompt style, optionally inside `{ }`) and several keyframes on one
line (`0: a cat, walking, 16: a dog`: a new keyframe starts only at `<number>:` after a comma or a line break,
so prompts keep their own commas). Besides frame numbers, keys may be negative (-1 is the last frame) or a
fraction of the video (0.5 is its middle), as the leading pack allows.

Between keyframes the original interpolates the two keyframes' encodings with slerp over the whole tensor
(`AnimateDiffPromptSchedule.single_cond` / `slerp` in scripts/animatediff_prompt.py); before the first and after
the last keyframe it holds them, or, when the video loops, travels from the last keyframe back to the first
across the wrap. The per-frame batch is built once for the whole video, so context windows slice one travel.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch

from .errors import PromptTravelError

_KEY = r'("?)(-?\d+(?:\.\d+)?)\1\s*:'  # a number, bare or in matching quotes, then a colon
_KEYFRAME_LINE = re.compile(r"^\s*" + _KEY)
_KEYFRAME_SPLIT = re.compile(r"(?:^|(?<=[,\n]))\s*" + _KEY)
_QUOTED_KEY = re.compile(r'^\s*"[^"]*"\s*:')
DOT_THRESHOLD = 0.9995
"""The original's slerp falls back to a straight line above this cosine, where acos loses precision."""


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule: `keys` as written (frame numbers, negatives or fractions) with their own prompts."""

    head: str
    keys: tuple[tuple[str, str], ...]
    tail: str

    def prompt(self, text: str) -> str:
        """The keyframe's full prompt: the original's `f"{head}, {prompt}, {tail}"`, without empty parts' commas."""
        return ", ".join(part for part in (self.head, text, self.tail) if part)


@dataclass(frozen=True)
class Keyframes:
    """The schedule resolved against a frame count: (frame, full prompt) in frame order, and what cannot show."""

    frames: tuple[tuple[int, str], ...]
    warnings: tuple[str, ...]


def _clean(text: str) -> str:
    text = text.strip().strip(",").strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1].strip()
    return text


def parse_schedule(text: str) -> Schedule:
    """Head, keyframes and tail of a schedule; keyframes keep the order they were written in."""
    body = text.strip()
    if body.startswith("{") and body.endswith("}"):
        body = body[1:-1]
    lines = [line for line in body.splitlines() if line.strip()]
    unsupported = [line for line in lines if _QUOTED_KEY.match(line) and not _KEYFRAME_LINE.match(line)]
    if unsupported:
        raise PromptTravelError(
            f"{unsupported[0].strip()[:40]!r} does not start with a frame number: ranges and holds such as \"0:8\" "
            "are not supported", "write one keyframe per frame, e.g. \"0\": \"a cat\".", input="schedule")
    key_lines = [i for i, line in enumerate(lines) if _KEYFRAME_LINE.match(line)]
    if not key_lines:
        raise PromptTravelError(
            f"the schedule has no keyframes (got {text[:60]!r})", "write lines like '0: a cat walking' and "
            "'16: a cat running' (or \"0\": \"a cat walking\",).", input="schedule")
    first, last = key_lines[0], key_lines[-1]
    head = ", ".join(_clean(line) for line in lines[:first] if _clean(line))
    tail = ", ".join(_clean(line) for line in lines[last + 1:] if _clean(line))
    parts = _KEYFRAME_SPLIT.split("\n".join(lines[first:last + 1]))
    keys = []
    for key, prompt in zip(parts[2::3], parts[3::3]):
        lines_of_prompt = [_clean(line) for line in prompt.splitlines()]
        keys.append((key, ", ".join(line for line in lines_of_prompt if line)))
    return Schedule(head=head, keys=tuple(keys), tail=tail)


def frame_of(key: str, frames: int) -> int:
    """The frame a key names: a frame number, from the end when negative, or a fraction (0.0-1.0) of the video."""
    if "." in key:
        fraction = float(key)
        if not 0.0 <= fraction <= 1.0:
            raise PromptTravelError(f"keyframe {key} is a fraction outside 0.0-1.0", "use a fraction of the video "
                                    "(0.5 is its middle) or a frame number.", input="schedule")
        return frames - 1 if math.isclose(fraction, 1.0) else int(fraction * frames)
    index = int(key)
    return frames + index if index < 0 else index


def resolve(schedule: Schedule, frames: int) -> Keyframes:
    """Keyframes on frames 0..frames-1. One that falls outside, or on a frame a later keyframe also takes,
    can never show: it is left out and a warning says so (the original asserts instead)."""
    by_frame: dict[int, tuple[str, str]] = {}
    warnings = []
    for key, text in schedule.keys:
        frame = frame_of(key, frames)
        if not 0 <= frame < frames:
            warnings.append(f"keyframe {key} ({text[:40]!r}) is outside the {frames} frames (0-{frames - 1}): "
                            "ignored; raise frames or lower the keyframe")
            continue
        if frame in by_frame:
            earlier = by_frame[frame]
            warnings.append(f"keyframes {earlier[0]} and {key} both land on frame {frame} of {frames}: "
                            f"{earlier[1][:40]!r} never shows; space keyframes further apart or raise frames")
        by_frame[frame] = (key, text)
    if not by_frame:
        raise PromptTravelError(f"no keyframe falls within the {frames} frames (0-{frames - 1})",
                                "lower the keyframe numbers or raise frames.", input="schedule")
    keyframes = tuple((frame, schedule.prompt(text)) for frame, (_, text) in sorted(by_frame.items()))
    return Keyframes(frames=keyframes, warnings=tuple(warnings))


def travel_plan(keyframes: list[int], frames: int, loop: bool) -> list[tuple[int, int, float]]:
    """Per frame: (index of the previous keyframe, index of the next, rate from previous to next).

    The original's `single_cond`: the neighbours of frame f are the last keyframe at or before f and the first
    after it; outside the keyframes it holds the nearest one, or with `loop` its neighbours are the last and
    the first keyframe with distances measured across the wrap.
    """
    plan = []
    for f in range(frames):
        prev, nxt = (len(keyframes) - 1, 0) if loop else (0, len(keyframes) - 1)
        for i, key in enumerate(keyframes):
            if key > f:
                nxt = i
                break
            prev = i
        dist_prev = f - keyframes[prev]
        if dist_prev < 0:
            dist_prev += frames
        dist_next = keyframes[nxt] - f
        if dist_next < 0:
            dist_next += frames
        if prev == nxt or dist_prev == 0:
            plan.append((prev, prev, 0.0))  # a keyframe's own frame is its encoding exactly
        else:
            plan.append((prev, nxt, dist_prev / (dist_prev + dist_next)))
    return plan


def slerp(v0: torch.Tensor, v1: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation of two whole tensors (one vector each), the original's: near-parallel ones lerp."""
    dot = ((v0 / v0.norm()) * (v1 / v1.norm())).sum()
    if dot.abs() > DOT_THRESHOLD:
        return (1.0 - t) * v0 + t * v1
    omega = dot.acos()
    return (((1.0 - t) * omega).sin() * v0 + (t * omega).sin() * v1) / omega.sin()


def per_frame(encodings: list[torch.Tensor], plan: list[tuple[int, int, float]]) -> torch.Tensor:
    """[1, ...] keyframe encodings → [frames, ...], each frame slerped between its two keyframes (in float32)."""
    dtype = encodings[0].dtype
    frames = []
    for prev, nxt, rate in plan:
        v0 = encodings[prev][0].float()
        frames.append(v0 if prev == nxt else slerp(v0, encodings[nxt][0].float(), rate))
    return torch.stack(frames).to(dtype)
