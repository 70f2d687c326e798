"""Frame order and chunked conversion of an IMAGE batch to 8-bit RGB for the writers.

Writers never see the whole batch as bytes: they pull small uint8 chunks in output order, so a long
video costs the input tensor plus one chunk, whatever the frame count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

CHUNK_FRAMES = 16


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


def _to_rgb(frame: torch.Tensor) -> torch.Tensor:
    """[H, W, C] → [H, W, 3]: grey is repeated, alpha dropped (views, no copy)."""
    channels = frame.shape[-1]
    if channels == 1:
        return frame.expand(*frame.shape[:-1], 3)
    return frame[..., :3] if channels == 4 else frame


def iter_chunks(images: torch.Tensor, order: list[int], chunk: int = CHUNK_FRAMES,
                check_interrupt: Callable[[], None] | None = None) -> Iterator[np.ndarray]:
    """Yield uint8 chunks [k, H, W, 3] of frames in `order`; `check_interrupt` may raise between chunks.

    Frames are converted one at a time into the chunk, so float temporaries never exceed one frame.
    A fresh chunk is allocated each time because the consumer may still hold the previous one.
    """
    height, width = images.shape[1], images.shape[2]
    for start in range(0, len(order), chunk):
        if check_interrupt is not None:
            check_interrupt()
        indices = order[start:start + chunk]
        block = np.empty((len(indices), height, width, 3), dtype=np.uint8)
        target = torch.from_numpy(block)
        for slot, index in enumerate(indices):
            frame = _to_rgb(images[index]).to(device="cpu", dtype=torch.float32)
            target[slot].copy_(frame.clamp(0, 1).mul(255).round())
        yield block


def iter_frames(images: torch.Tensor, order: list[int],
                check_interrupt: Callable[[], None] | None = None) -> Iterator[np.ndarray]:
    """One [H, W, 3] uint8 frame at a time, for writers that take frames singly."""
    for block in iter_chunks(images, order, check_interrupt=check_interrupt):
        yield from block
