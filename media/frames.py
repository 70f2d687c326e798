"""Frame order and chunked conversion of an IMAGE batch to RGB(A) integers for the writers.

Writers never see the whole batch as bytes: they pull small chunks in output order, so a long video costs the
input tensor plus one chunk, whatever the frame count. Chunks are 8-bit, or 16-bit (little-endian, for ffmpeg's
rgb48le / rgba64le) for formats stored with more than 8 bits, so a 10-bit encode gets the float frames' own
precision rather than 8-bit steps. An alpha channel, when given, comes from a MASK-shaped tensor [B, H, W].
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

CHUNK_FRAMES = 16
"""Frames per chunk wherever the pack streams frames (writers, interpolation, VAE calls on a GPU)."""


def frame_order(count: int, reverse: bool = False, remove_head: bool = False, remove_tail: bool = False) -> list[int]:
    """Indices of the frames to write, with the original extension's boomerang semantics.

    `reverse` appends the frames backwards; `remove_head` drops the first reversed frame (a repeat of the
    last frame) and `remove_tail` the last one (a repeat of the first, which a looping player shows next).
    """
    order = list(range(count))
    if not reverse:
        return order
    back = order[::-1]
    if remove_head:
        back = back[1:]
    if remove_tail:
        back = back[:-1]
    return order + back


def reorder(images: torch.Tensor, order: list[int]) -> torch.Tensor:
    """The batch in output order (a copy), for consumers that want frames rather than files."""
    return images.index_select(0, torch.tensor(order, dtype=torch.long, device=images.device))


def _to_rgb(frame: torch.Tensor, keep_grey: bool = False) -> torch.Tensor:
    """[H, W, C] → [H, W, 3]: grey is repeated (or kept as one channel), alpha dropped (views, no copy)."""
    channels = frame.shape[-1]
    if channels == 1:
        return frame if keep_grey else frame.expand(*frame.shape[:-1], 3)
    return frame[..., :3] if channels == 4 else frame


def alpha_of(images: torch.Tensor, mask: torch.Tensor | None, node: str) -> torch.Tensor | None:
    """The alpha channel [B, H, W] (1 = opaque): the mask when given (one per frame, or one for all), else an
    RGBA batch's fourth channel, else None."""
    if mask is None:
        return images[..., 3] if images.shape[-1] == 4 else None
    if mask.ndim == 2:
        mask = mask.unsqueeze(0)
    count, height, width = images.shape[:3]
    if mask.ndim != 3 or mask.shape[1:] != (height, width) or mask.shape[0] not in (1, count):
        raise ValueError(f"{node}: mask has shape {tuple(mask.shape)} but images are {count} frames of "
                         f"{width}x{height}; give one mask per frame (or one for all) of the same size")
    return mask.expand(count, height, width)


def iter_chunks(images: torch.Tensor, order: list[int], chunk: int = CHUNK_FRAMES,
                check_interrupt: Callable[[], None] | None = None, alpha: torch.Tensor | None = None,
                sixteen_bit: bool = False, keep_grey: bool = False) -> Iterator[np.ndarray]:
    """Yield chunks [k, H, W, 3] (or 4 with `alpha`; 1 for a grey batch with `keep_grey`) of frames in `order`,
    uint8 or little-endian uint16; `check_interrupt` may raise between chunks.

    Frames are converted one at a time into the chunk, so float temporaries never exceed one frame.
    A fresh chunk is allocated each time because the consumer may still hold the previous one.
    """
    height, width = images.shape[1], images.shape[2]
    channels = 1 if keep_grey and images.shape[-1] == 1 else 3 if alpha is None else 4
    scale, dtype = (65535, np.dtype("<u2")) if sixteen_bit else (255, np.dtype(np.uint8))
    for start in range(0, len(order), chunk):
        if check_interrupt is not None:
            check_interrupt()
        indices = order[start:start + chunk]
        block = np.empty((len(indices), height, width, channels), dtype=dtype)
        for slot, index in enumerate(indices):
            frame = _to_rgb(images[index], keep_grey).to(device="cpu", dtype=torch.float32)
            if alpha is not None:
                plane = alpha[index].to(device="cpu", dtype=torch.float32).unsqueeze(-1)
                frame = torch.cat([frame, plane], dim=-1)
            block[slot] = frame.clamp(0, 1).mul(scale).round().to(torch.int32).numpy()
        yield block


def iter_frames(images: torch.Tensor, order: list[int], check_interrupt: Callable[[], None] | None = None,
                alpha: torch.Tensor | None = None) -> Iterator[np.ndarray]:
    """One [H, W, 3|4] uint8 frame at a time, for writers that take frames singly."""
    for block in iter_chunks(images, order, check_interrupt=check_interrupt, alpha=alpha):
        yield from block
