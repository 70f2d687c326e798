"""Keeping every nth frame of a batch after skipping the first ones, as a clip is thinned or trimmed.

Images [B,H,W,C] and masks [B,H,W] are plain tensors. A latent is a dict: every entry with one item per frame (the
samples, a per-frame noise_mask, batch_index) is picked alike, so the frames stay in step; an entry shared by all
frames (a single noise mask) is kept as it is.
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import InputError


def _check(frames: int, every_nth: int, skip_first: int, skip_input: str) -> None:
    if every_nth < 1:
        raise InputError(f"select_every_nth is {every_nth}", "use 1 or more (1 keeps every frame)",
                         input="select_every_nth")
    if skip_first >= frames:
        raise InputError(f"{skip_input} = {skip_first} skips all {frames} frames of the batch",
                         f"skip fewer than {frames}", input=skip_input)


def select_frames(batch: torch.Tensor, every_nth: int, skip_first: int, skip_input: str = "skip_first") -> torch.Tensor:
    """Frames skip_first, skip_first + n, skip_first + 2n, … of an IMAGE or MASK batch."""
    _check(batch.shape[0], every_nth, skip_first, skip_input)
    return batch[skip_first::every_nth]


def select_latent_frames(latent: dict[str, Any], every_nth: int, skip_first: int,
                         skip_input: str = "skip_first") -> dict[str, Any]:
    """The same frames of a LATENT, its per-frame entries with them."""
    frames = latent["samples"].shape[0]
    _check(frames, every_nth, skip_first, skip_input)
    picked = dict(latent)
    for key, value in latent.items():
        per_frame = isinstance(value, torch.Tensor) and value.ndim > 0 and value.shape[0] == frames
        if per_frame or (key == "batch_index" and isinstance(value, list) and len(value) == frames):
            picked[key] = value[skip_first::every_nth]
    return picked
