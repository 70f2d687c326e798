"""Context windows spread over several GPUs: which GPU runs which windows, and the order their results are fused in.

Windows are the natural unit to spread: independent within a step and equal in cost, and unlike core's cond/uncond
split they keep every GPU busy at cfg 1 (distilled models). Each device gets one contiguous run of the step's windows
(neighbours stay together, so a device can still batch several windows per call), sized by its measured speed;
results are fused in window order whatever device ran them, so the per-frame sums add up in the same order as on one
device.

No ComfyUI imports: the assignment and the fuse order are plain functions over window indices.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TypeVar

T = TypeVar("T")


def shares(windows: int, weights: Sequence[float]) -> list[int]:
    """Windows per device in proportion to `weights`, summing to `windows`; each within one window of its exact share
    (largest remainders get the leftover windows, the earlier device on a tie)."""
    if windows < 0:
        raise ValueError(f"the number of windows must be ≥ 0, got {windows}")
    if not weights or any(not math.isfinite(w) or w <= 0 for w in weights):
        raise ValueError(f"device weights must be finite and > 0, got {list(weights)}")
    total = float(sum(weights))
    exact = [windows * w / total for w in weights]
    counts = [math.floor(e) for e in exact]
    by_remainder = sorted(range(len(weights)), key=lambda d: (-(exact[d] - counts[d]), d))
    for d in by_remainder[:windows - sum(counts)]:
        counts[d] += 1
    return counts


def assign(windows: int, weights: Sequence[float]) -> list[int]:
    """The device index of each window: contiguous shards, the first device (the main one) first."""
    return [d for d, count in enumerate(shares(windows, weights)) for _ in range(count)]


def shards(assignment: Sequence[int], devices: int) -> list[list[int]]:
    """Each device's window indices, in window order."""
    result: list[list[int]] = [[] for _ in range(devices)]
    for window, device in enumerate(assignment):
        result[device].append(window)
    return result


def calls(shard: Sequence[int], per_call: int) -> list[list[int]]:
    """A device's windows grouped into model calls of at most `per_call`, only consecutive windows together (a
    batched call's frames must be its windows back to back, as on one device)."""
    groups: list[list[int]] = []
    for window in shard:
        if groups and len(groups[-1]) < per_call and groups[-1][-1] == window - 1:
            groups[-1].append(window)
        else:
            groups.append([window])
    return groups


def fuse_order(results: Iterable[tuple[int, T]], windows: int) -> list[T]:
    """Per-window results, gathered from any devices in any order, in window order; every window exactly once."""
    by_window: dict[int, T] = {}
    for window, result in results:
        if window in by_window:
            raise ValueError(f"window {window} came back twice")
        by_window[window] = result
    missing = sorted(set(range(windows)) - set(by_window))
    if missing or len(by_window) != windows:
        raise ValueError(f"windows {missing} did not come back")
    return [by_window[w] for w in range(windows)]


class SpeedMeter:
    """Each device's measured speed in windows per second, smoothed over steps, as weights for `shares`.

    Until a device has been timed it keeps its prior weight (core's MultiGPU options' relative_speed, else 1), scaled
    into the timed devices' units. A step re-measures every device that ran windows in it; `smoothing` is the weight
    of the old estimate, so one slow step (another process on that GPU) moves the split only part of the way.
    """

    def __init__(self, priors: Sequence[float], smoothing: float = 0.5):
        if not 0 <= smoothing < 1:
            raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
        self.priors = [float(p) if math.isfinite(p) and p > 0 else 1.0 for p in priors]
        self.smoothing = smoothing
        self.speeds: list[float | None] = [None] * len(self.priors)

    def record(self, device: int, windows: int, seconds: float) -> None:
        if windows <= 0 or not math.isfinite(seconds) or seconds <= 0:
            return
        speed = windows / seconds
        old = self.speeds[device]
        self.speeds[device] = speed if old is None else self.smoothing * old + (1 - self.smoothing) * speed

    def weights(self) -> list[float]:
        timed = [(s, p) for s, p in zip(self.speeds, self.priors) if s is not None]
        unit = sum(s for s, _ in timed) / sum(p for _, p in timed) if timed else 1.0
        return [s if s is not None else p * unit for s, p in zip(self.speeds, self.priors)]
