"""Prompt travel: a keyframed prompt schedule turned into one conditioning per frame.

The schedule is text such as `0: a cat walking, 16: a cat running, 32: a dog`. A new keyframe starts only at
`<number>:` at the start or after a comma or newline, so prompts keep their own commas. Frames between two
keyframes blend the two encodings linearly; the context handler slices the per-frame batch per window.
"""

from __future__ import annotations

import re

import torch

_KEYFRAME = re.compile(r"(?:^|[,\n])\s*(\d+)\s*:")


class PromptTravelError(ValueError):
    """A schedule the per-frame conditioning cannot be built from; the message names the fix."""


def parse_schedule(text: str) -> list[tuple[int, str]]:
    """(frame, prompt) keyframes in frame order."""
    parts = _KEYFRAME.split(text.strip())
    if len(parts) < 3 or parts[0].strip(" ,\n"):
        raise PromptTravelError("Prompt Travel: schedule must look like '0: a cat walking, 16: a cat running' "
                                f"(starting with a frame number and a colon); got {text[:60]!r}.")
    keyframes: dict[int, str] = {}
    for frame, prompt in zip(parts[1::2], parts[2::2]):
        if int(frame) in keyframes:
            raise PromptTravelError(f"Prompt Travel: frame {frame} appears twice in the schedule; keep one.")
        keyframes[int(frame)] = prompt.strip(" ,\n")
    return sorted(keyframes.items())


def blend_weights(keyframes: list[int], frames: int) -> torch.Tensor:
    """[frames, keyframes] weights: linear between neighbouring keyframes, held before the first and after the last."""
    weights = torch.zeros(frames, len(keyframes))
    for f in range(frames):
        if f <= keyframes[0]:
            weights[f, 0] = 1.0
        elif f >= keyframes[-1]:
            weights[f, -1] = 1.0
        else:
            i = max(k for k in range(len(keyframes)) if keyframes[k] <= f)
            t = (f - keyframes[i]) / (keyframes[i + 1] - keyframes[i])
            weights[f, i], weights[f, i + 1] = 1.0 - t, t
    return weights


def per_frame(encodings: list[torch.Tensor], weights: torch.Tensor) -> torch.Tensor:
    """Blend [1, ...] keyframe encodings into [frames, ...] with `weights` [frames, keyframes]."""
    stacked = torch.cat(encodings, dim=0)
    shape = (weights.size(0),) + tuple(stacked.shape[1:])
    return (weights.to(stacked.dtype) @ stacked.reshape(stacked.size(0), -1)).reshape(shape)
