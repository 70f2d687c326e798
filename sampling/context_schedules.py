"""Which frames each context window covers, and how much each frame of a window counts when windows overlap.

Pure list maths (no ComfyUI, no torch) so the tests can scan the whole input space of the Context Options node.

Every schedule starts from the original A1111 extension's `uniform` generator (`scripts/animatediff_infv2v.py` of
continue-revolution/sd-webui-animatediff): strides are powers of two up to `context_stride`, and the whole layout
shifts by `ordered_halving(step)` every sampling step so window seams never sit on the same frames twice in a row.

- `looped`: windows wrap modulo the frame count once the step shift moves them, so end and start frames share
  windows (the original's "R-P"; ComfyUI core's `create_windows_uniform_looped`).
- `uniform`, closed_loop off: a window that would wrap is slid to the end of the video instead, and when that leaves
  the start uncovered a window starting where the wrap landed is inserted after it; repeated windows are dropped.
  This is the leading ComfyUI pack's `standard_uniform` and ComfyUI core's `create_windows_uniform_standard`, window
  for window, so the same settings give the same video in either pack.
- closed_loop on (uniform or looped): the windows run the full length, so the end wraps into the start (the
  original's "A").
- `static`: the same windows every step, the last one slid back to end on the last frame.

Whatever the schedule, two guarantees hold for every setting the node accepts (tests/test_context_coverage.py scans
them): every index is a frame of the video, and every frame is in at least one window. Where the generator leaves a
frame out (only possible with context_stride ≥ 2) the fewest extra windows that cover the gaps are appended. A frame
in no window would get zero total weight and turn to NaN, which then spreads to its neighbours on the next steps.
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


def _wrapping_windows(num_frames: int, length: int, overlap: int, stride: int, step: int,
                      full_length: bool) -> list[Window]:
    """The original generator: windows of every 1st, 2nd, 4th, ... frame, taken modulo the frame count."""
    shift = ordered_halving(step)
    pad = int(round(num_frames * shift))
    stop = num_frames + pad + (0 if full_length else -overlap)
    windows = []
    for context_step in (1 << k for k in range(_effective_stride(num_frames, length, stride))):
        for start in range(int(shift * context_step) + pad, stop, length * context_step - overlap):
            windows.append([e % num_frames for e in range(start, start + length * context_step, context_step)])
    return windows


def _wrap_index(window: Window) -> int | None:
    """Position where a window jumps back from the end of the video to its start, if it does."""
    for i in range(1, len(window)):
        if window[i] < window[i - 1]:
            return i
    return None


def _slide_to_end(window: Window, num_frames: int) -> Window:
    """The window's spacing kept, moved so it starts at frame 0 (modulo the video), then slid to end on its last
    element at the last frame."""
    relative = [(e - window[0]) % num_frames for e in window]
    delta = num_frames - 1 - relative[-1]
    return [e + delta for e in relative]


def _dedupe(windows: list[Window]) -> list[Window]:
    """Identical windows give identical predictions; evaluating one of them is enough."""
    seen: set[tuple[int, ...]] = set()
    unique = []
    for window in windows:
        if tuple(window) not in seen:
            seen.add(tuple(window))
            unique.append(window)
    return unique


def _unwrapped(windows: list[Window], num_frames: int, length: int) -> list[Window]:
    """Slide each wrapping window to the end of the video; where the window after it does not hold the frame the
    wrap landed on, insert a contiguous window starting there (it is itself checked in turn). Then drop repeats."""
    windows = [list(w) for w in windows]
    i = 0
    while i < len(windows):
        wrap = _wrap_index(windows[i])
        if wrap is not None:
            landed = windows[i][wrap]
            windows[i] = _slide_to_end(windows[i], num_frames)
            if landed not in windows[(i + 1) % len(windows)]:
                windows.insert(i + 1, list(range(landed, landed + length)))
        i += 1
    return _dedupe(windows)


def _inside_video(window: Window, num_frames: int) -> Window:
    """Sliding a dilated window to the end can push its last elements past the last frame (its span is longer than
    the video). A window that fits is moved back inside; one that cannot is taken modulo the frame count, as the
    original generator takes every window (it then holds some frames twice; the fuse adds those up)."""
    if max(window) < num_frames:
        return window
    if max(window) - min(window) < num_frames:
        back = max(window) - (num_frames - 1)
        return [e - back for e in window]
    return [e % num_frames for e in window]


def _covering(windows: list[Window], num_frames: int, length: int) -> list[Window]:
    """Append the fewest contiguous windows that cover the frames no window holds (greedy from the left is optimal
    for covering points with intervals of one length)."""
    covered = {e for window in windows for e in window}
    added: list[Window] = []
    end = -1
    for frame in range(num_frames):
        if frame in covered or frame < end:
            continue
        start = min(frame, num_frames - length)
        added.append(list(range(start, start + length)))
        end = start + length
    return windows + added


def looped_windows(num_frames: int, length: int, overlap: int, stride: int, step: int, closed_loop: bool) -> list[Window]:
    if num_frames <= length:
        return [list(range(num_frames))]
    windows = _dedupe(_wrapping_windows(num_frames, length, overlap, stride, step, closed_loop))
    return _covering(windows, num_frames, length)


def uniform_windows(num_frames: int, length: int, overlap: int, stride: int, step: int, closed_loop: bool) -> list[Window]:
    if num_frames <= length or closed_loop:
        return looped_windows(num_frames, length, overlap, stride, step, closed_loop)
    windows = _unwrapped(_wrapping_windows(num_frames, length, overlap, stride, step, False), num_frames, length)
    windows = _dedupe([_inside_video(w, num_frames) for w in windows])
    return _covering(windows, num_frames, length)


def static_windows(num_frames: int, length: int, overlap: int, closed_loop: bool) -> list[Window]:
    if num_frames <= length:
        return [list(range(num_frames))]
    delta = length - overlap
    if closed_loop:
        return [[e % num_frames for e in range(start, start + length)] for start in range(0, num_frames, delta)]
    windows = []
    for start in range(0, num_frames, delta):
        if start + length >= num_frames:
            windows.append(list(range(num_frames - length, num_frames)))
            break
        windows.append(list(range(start, start + length)))
    return windows


def context_windows(schedule: str, num_frames: int, length: int, overlap: int, stride: int, step: int,
                    closed_loop: bool) -> list[Window]:
    """The windows for one sampling step: each of `length` frames (the whole video when it is shorter), every index
    a frame of the video, every frame in at least one window."""
    if schedule == "uniform":
        return uniform_windows(num_frames, length, overlap, stride, step, closed_loop)
    if schedule == "looped":
        return looped_windows(num_frames, length, overlap, stride, step, closed_loop)
    if schedule == "static":
        return static_windows(num_frames, length, overlap, closed_loop)
    raise ValueError(f"unknown context schedule {schedule!r}")


def fuse_weights(method: str, length: int) -> list[float]:
    """Per-position weights inside a window; frames near a window's edge count less, so seams blend. Every weight is
    above zero, so a frame in any window gets a non-zero total. `overwrite` has no weights (the later window
    replaces the earlier one, see context_handler.py); it is given flat ones here for callers that only count."""
    if method in ("flat", "overwrite"):
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
