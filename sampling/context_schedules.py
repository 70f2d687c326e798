"""Which frames each context window covers, and how much each frame of a window counts when windows overlap.

Pure list maths (no ComfyUI, no torch) so the worked examples in the tests pin the exact windows.

`uniform` and `looped` reproduce the original A1111 extension's `uniform` generator
(`scripts/animatediff_infv2v.py` of continue-revolution/sd-webui-animatediff): strides are powers of two up to
`context_stride`, and the whole layout shifts by `ordered_halving(step)` every sampling step so window seams never
sit on the same frames twice in a row. The original has three loop settings; ours map onto them as:

- `looped`, closed_loop off = the original's default "R-P": windows wrap modulo the frame count once the step
  shift moves them, so end and start frames share windows (ComfyUI core's `create_windows_uniform_looped`).
- `uniform`, closed_loop off = the original's "N": a window that would wrap is replaced by the last and/or first
  window, so the video never loops.
- closed_loop on (either) = the original's "A": the windows run the full length, so the end wraps into the start.

`static` keeps the same windows every step (ComfyUI core's `create_windows_static_standard`).
"""

from __future__ import annotations

import math

Window = list[int]


def ordered_halving(step: int) -> float:
    """The step's bits reversed as a fraction in [0, 1): 0, 1/2, 1/4, 3/4, ... spreads the per-step shifts evenly."""
    return int(f"{step:064b}"[::-1], 2) / (1 << 64)


def _effective_stride(num_frames: int, length: int, stride: int) -> int:
    """Strides beyond what the video needs would only repeat windows (the original caps them the same way)."""
    return min(stride, int(math.ceil(math.log2(num_frames / length))) + 1)


def _shifted_starts(num_frames: int, length: int, overlap: int, step: int, context_step: int, full_length: bool):
    shift = ordered_halving(step)
    pad = int(round(num_frames * shift))
    stop = num_frames + pad + (0 if full_length else -overlap)
    return range(int(shift * context_step) + pad, stop, length * context_step - overlap)


def _window(start: int, num_frames: int, length: int, context_step: int) -> Window:
    return [e % num_frames for e in range(start, start + length * context_step, context_step)]


def _wrap_index(window: Window) -> int | None:
    """Position where a window jumps back from the end of the video to its start, if it does."""
    for i in range(1, len(window)):
        if window[i] < window[i - 1]:
            return i
    return None


def _dedupe(windows: list[Window]) -> list[Window]:
    """Identical windows give identical predictions, so evaluating one of them fuses to the same result."""
    seen: set[tuple[int, ...]] = set()
    unique = []
    for window in windows:
        if tuple(window) not in seen:
            seen.add(tuple(window))
            unique.append(window)
    return unique


def looped_windows(num_frames: int, length: int, overlap: int, stride: int, step: int, closed_loop: bool) -> list[Window]:
    if num_frames <= length:
        return [list(range(num_frames))]
    windows = []
    for context_step in (1 << k for k in range(_effective_stride(num_frames, length, stride))):
        for start in _shifted_starts(num_frames, length, overlap, step, context_step, closed_loop):
            windows.append(_window(start, num_frames, length, context_step))
    return _dedupe(windows)


def uniform_windows(num_frames: int, length: int, overlap: int, stride: int, step: int, closed_loop: bool) -> list[Window]:
    if num_frames <= length or closed_loop:
        return looped_windows(num_frames, length, overlap, stride, step, closed_loop)
    first = list(range(length))
    last = list(range(num_frames - length, num_frames))
    windows = []
    for context_step in (1 << k for k in range(_effective_stride(num_frames, length, stride))):
        previous_wrapped_late = False
        for start in _shifted_starts(num_frames, length, overlap, step, context_step, False):
            window = _window(start, num_frames, length, context_step)
            wrap = _wrap_index(window) if context_step == 1 else None
            if wrap is None:
                windows.append(window)
            elif previous_wrapped_late:
                # The previous window already stood in for the end; this one stands in for the start.
                previous_wrapped_late = False
                windows.append(first)
            elif wrap < length - overlap:
                windows += [last, first]
            else:
                # Wraps only inside its overlap: the next window (which wraps too) covers the start.
                previous_wrapped_late = True
                windows.append(last)
    return _dedupe(windows)


def static_windows(num_frames: int, length: int, overlap: int, closed_loop: bool) -> list[Window]:
    if num_frames <= length:
        return [list(range(num_frames))]
    delta = length - overlap
    if closed_loop:
        return [_window(start, num_frames, length, 1) for start in range(0, num_frames, delta)]
    windows = []
    for start in range(0, num_frames - overlap, delta):
        start = min(start, num_frames - length)
        windows.append(list(range(start, start + length)))
        if start + length >= num_frames:
            break
    return windows


def context_windows(schedule: str, num_frames: int, length: int, overlap: int, stride: int, step: int,
                    closed_loop: bool) -> list[Window]:
    """The windows for one sampling step; together they cover every frame at least once."""
    if schedule == "uniform":
        return uniform_windows(num_frames, length, overlap, stride, step, closed_loop)
    if schedule == "looped":
        return looped_windows(num_frames, length, overlap, stride, step, closed_loop)
    if schedule == "static":
        return static_windows(num_frames, length, overlap, closed_loop)
    raise ValueError(f"unknown context schedule {schedule!r}")


def fuse_weights(method: str, length: int) -> list[float]:
    """Per-position weights inside a window; frames near a window's edge count less, so seams blend."""
    if method == "flat":
        return [1.0] * length
    if method == "pyramid":
        # FreeNoise's weighted average: 1, 2, ..., peak, ..., 2, 1.
        half = (length + 1) // 2
        rising = list(range(1, half + 1))
        return [float(w) for w in rising + rising[: length - half][::-1]]
    if method == "gaussian":
        centre = (length - 1) / 2
        sigma = max(length / 4, 1e-6)
        return [math.exp(-((i - centre) ** 2) / (2 * sigma**2)) for i in range(length)]
    raise ValueError(f"unknown fuse method {method!r}")
