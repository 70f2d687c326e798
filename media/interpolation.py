"""Frame interpolation: N−1 new frames between each pair of an IMAGE batch, by a named method.

`METHODS` maps a method's name to a function with the `Interpolator` contract. `interpolate` does what every
method shares (checking the input, the loop, the frame count) and puts each original frame back at its
position afterwards, so a method may re-encode or approximate the frames it was given without the user's
frames changing. A learned interpolator (FILM, RIFE) joins by adding one entry here once a user supplies
its weights.

`motion` streams frames through ffmpeg (ffmpeg_process; its `minterpolate` filter, motion-compensated mode):
frames go in and come out in small chunks, so memory stays near the input tensor plus the output tensor however
long the video is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
import torch

from . import ffmpeg_process
from .frames import CHUNK_FRAMES, iter_chunks

log = logging.getLogger(__name__)

# ffmpeg's raw pixel format for each channel count of an IMAGE; minterpolate works in YUV (alpha carried in
# YUVA), so ffmpeg converts around the filter and only the in-between frames see that rounding.
_PIX_FMTS = {1: "gray", 3: "rgb24", 4: "rgba"}
_FILTER_FMTS = {1: "gray", 3: "yuv444p", 4: "yuva444p"}
# mci = motion-compensated interpolation. 8-pixel blocks (ffmpeg's default is 16) follow small objects at
# about the same cost; adaptive overlapped block compensation with variable-size blocks keeps their edges
# solid (measured on a moving square: default options leave it 2 px short and a third smaller near the border,
# these put it on its midpoint). Scene-change detection stays ffmpeg's default: across a cut it repeats a
# frame instead of warping one picture into another.
MIN_SIDE = 16
MINTERPOLATE = "mi_mode=mci:mc_mode=aobmc:mb_size=8:vsbmc=1"


class Interpolator(Protocol):
    def __call__(self, images: torch.Tensor, order: list[int], multiplier: int, count: int,
                 check_interrupt: Callable[[], None] | None, node: str) -> torch.Tensor:
        """The first `count` frames of the path through `images[order]`, `multiplier` frames per step.

        Frame k·multiplier of the result stands for images[order[k]]; `interpolate` overwrites those with
        the originals, so a method need not reproduce them exactly.
        """


class InterpolationError(RuntimeError):
    """A method could not produce the frames (ffmpeg failed); the message carries the tool's own words."""


def output_count(frame_count: int, multiplier: int, closed_loop: bool) -> int:
    """n frames become (n−1)·N+1, or n·N with the loop back to the first frame (ending on an in-between)."""
    return frame_count * multiplier if closed_loop else (frame_count - 1) * multiplier + 1


def interpolate(images: torch.Tensor | Sequence[torch.Tensor], multiplier: int, method: str, *, node: str,
                closed_loop: bool = False, check_interrupt: Callable[[], None] | None = None) -> torch.Tensor:
    """Insert multiplier−1 frames between each pair of frames; every input frame is kept unchanged.

    `images` is an IMAGE batch [n, H, W, C] or a list of frames or batches of one size.
    """
    batch = _as_batch(images, node)
    if isinstance(multiplier, bool) or not isinstance(multiplier, int) or multiplier < 2:
        raise ValueError(f"{node}: input 'multiplier' is {multiplier!r}; it is the number of frames each original "
                         f"frame becomes, so set it to a whole number of 2 or more (2 doubles the frame rate).")
    if method not in METHODS:
        raise ValueError(f"{node}: input 'method' is {method!r}; choose one of {', '.join(METHODS)}.")
    count = output_count(batch.shape[0], multiplier, closed_loop)
    order = list(range(batch.shape[0])) + ([0] if closed_loop else [])
    if len(order) == 1:
        return batch.clone()
    result = METHODS[method](batch, order, multiplier, count, check_interrupt, node)
    if result.shape != (count, *batch.shape[1:]):
        raise InterpolationError(f"{node}: method {method!r} returned {tuple(result.shape)} frames for "
                                 f"{(count, *batch.shape[1:])}; this is a bug in the method, use another.")
    result[::multiplier] = batch
    log.info("%s: %d frames -> %d (%s, x%d%s)", node, batch.shape[0], count, method, multiplier,
             ", closed loop" if closed_loop else "")
    return result


def _as_batch(images: torch.Tensor | Sequence[torch.Tensor], node: str) -> torch.Tensor:
    if not isinstance(images, torch.Tensor):
        parts = [part if part.dim() == 4 else part.unsqueeze(0) for part in images]
        sizes = sorted({tuple(part.shape[1:]) for part in parts})
        if len(sizes) > 1:
            listed = ", ".join(f"{w}x{h}x{c}" for h, w, c in sizes)
            raise ValueError(f"{node}: input 'images' holds frames of different sizes ({listed}, width x height x "
                             f"channels); resize them to one size first (e.g. with ImageScale).")
        images = torch.cat(parts) if parts else torch.empty(0, 0, 0, 3)
    if images.dim() != 4 or images.shape[-1] not in _PIX_FMTS:
        raise ValueError(f"{node}: input 'images' has shape {tuple(images.shape)}; connect an IMAGE batch "
                         f"[frames, height, width, channels] with 1, 3 or 4 channels.")
    if images.shape[0] == 0 or images.shape[1] == 0 or images.shape[2] == 0:
        raise ValueError(f"{node}: input 'images' is empty ({tuple(images.shape)}); connect a batch with at "
                         f"least one frame.")
    return images


def blend(images: torch.Tensor, order: list[int], multiplier: int, count: int,
          check_interrupt: Callable[[], None] | None, node: str) -> torch.Tensor:
    """Linear cross-fade: frame k·N+j = (1−j/N)·a + (j/N)·b, a chunk of frame pairs at a time."""
    out = torch.empty((count, *images.shape[1:]), dtype=images.dtype, device=images.device)
    steps = len(order) - 1
    for start in range(0, steps, CHUNK_FRAMES):
        if check_interrupt is not None:
            check_interrupt()
        stop = min(start + CHUNK_FRAMES, steps)
        first, second = images[order[start:stop]], images[order[start + 1:stop + 1]]
        for j in range(multiplier):
            weight = j / multiplier
            out[start * multiplier + j:stop * multiplier:multiplier] = first * (1 - weight) + second * weight
    if count > steps * multiplier:
        out[-1] = images[order[-1]]
    return out


def motion(images: torch.Tensor, order: list[int], multiplier: int, count: int,
           check_interrupt: Callable[[], None] | None, node: str) -> torch.Tensor:
    """Motion-compensated frames from ffmpeg's minterpolate, streamed through stdin/stdout.

    The input plays at 1 fps and the filter outputs `multiplier` fps, so output frame k·N falls on input
    frame k. minterpolate stops short of the last input frames (it looks one frame ahead), so the last
    frame is held for two more frames and the surplus output is read and dropped.
    """
    height, width, channels = images.shape[1:]
    frame_bytes = height * width * channels
    source = order + [order[-1]] * 2
    args = ["-f", "rawvideo", "-pix_fmt", _PIX_FMTS[channels], "-s", f"{width}x{height}", "-framerate", "1",
            "-i", "pipe:0",
            "-vf", _filters(width, height, channels, multiplier),
            "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", _PIX_FMTS[channels], "pipe:1"]
    out = torch.empty((count, height, width, channels), dtype=images.dtype, device=images.device)
    buffer = np.empty((CHUNK_FRAMES, height, width, channels), np.uint8)
    view = memoryview(buffer).cast("B")
    received = 0

    def read(stdout) -> None:
        nonlocal received
        while True:
            if check_interrupt is not None:
                check_interrupt()
            got = _read_into(stdout, view)
            frames = got // frame_bytes
            take = max(0, min(frames, count - received))
            if take:
                out[received:received + take] = torch.from_numpy(buffer[:take]).to(out.dtype).div_(255)
            received += frames
            if got < len(view):
                break

    alpha = images[..., 3] if channels == 4 else None
    chunks = iter_chunks(images, source, alpha=alpha, keep_grey=True)
    finished = ffmpeg_process.run(args, chunks, read_output=read)
    if finished.code != 0 or received < count:
        raise InterpolationError(f"{node}: ffmpeg's minterpolate gave {received} of {count} frames (exit "
                                 f"status {finished.code}): {finished.stderr or 'no message'}. Use method 'blend' "
                                 "instead.")
    return out


def _filters(width: int, height: int, channels: int, multiplier: int) -> str:
    """The filter chain; frames under minterpolate's 16-pixel minimum are padded for it and cropped back."""
    chain = [f"format={_FILTER_FMTS[channels]}"]
    small = width < MIN_SIDE or height < MIN_SIDE
    if small:
        chain.append(f"pad={max(width, MIN_SIDE)}:{max(height, MIN_SIDE)}")
    chain.append(f"minterpolate=fps={multiplier}:{MINTERPOLATE}")
    if small:
        chain.append(f"crop={width}:{height}:0:0")
    return ",".join(chain)


def _read_into(stream, view: memoryview) -> int:
    """Fill `view` from `stream`; fewer bytes only at the end of the stream."""
    filled = 0
    while filled < len(view):
        got = stream.readinto(view[filled:])
        if not got:
            break
        filled += got
    return filled


METHODS: dict[str, Interpolator] = {"blend": blend, "motion": motion}
