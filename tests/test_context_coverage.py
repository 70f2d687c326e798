"""Every frame in a window, always: the schedules over the whole input space of the Context Options node.

A frame in no window gets zero total weight, turns to NaN and spreads to its neighbours on the next steps (issue 17:
default Context Options rendered 27 frames black at 20 steps). Pure list maths: no model, no lock needed.

`reference_uniform` is written here from the description of the leading pack's `standard_uniform` schedule (not
from our code, and not importing theirs): at stride 1 our windows must be exactly its windows.
"""

from __future__ import annotations

import random

import pytest

from conftest import pack_module

schedules = pack_module("sampling.context_schedules")
options = pack_module("sampling.context_options")

SCHEDULES = ("uniform", "looped", "static")


def shift_fraction(step: int) -> float:
    """The step's 64 bits read backwards as a binary fraction: 0, 1/2, 1/4, 3/4, 1/8, ..."""
    fraction, weight = 0.0, 0.5
    for bit in range(64):
        if step >> bit & 1:
            fraction += weight
        weight /= 2
    return fraction


def reference_uniform(frames: int, length: int, overlap: int, stride: int, step: int) -> list[list[int]]:
    """The leading pack's uniform schedule, from its description:

    1. A video no longer than a window is one window.
    2. Dilations 1, 2, 4, ... while the video needs them (at most `stride` of them, and no more than the first whose
       dilated window spans the video): windows of `length` frames `dilation` apart, the first starting at
       shift·dilation + round(frames·shift), the next ones length·dilation − overlap later, while the start is below
       frames + round(frames·shift) − overlap; every index taken modulo the frame count.
    3. Walk the list in order (it grows as it is walked): a window whose indices drop somewhere (it wrapped past the
       last frame) keeps its spacing but is moved to end on the last frame; if the window after it (the first one
       when it is the last) lacks the index the wrap landed on, a contiguous window starting at that index goes in
       right after it.
    4. Drop windows equal to an earlier one.
    """
    if frames <= length:
        return [list(range(frames))]
    shift = shift_fraction(step)
    pad = int(round(frames * shift))
    needed = 0
    while length << needed < frames:
        needed += 1
    found: list[list[int]] = []
    for level in range(min(stride, needed + 1)):
        dilation = 1 << level
        start = int(shift * dilation) + pad
        while start < frames + pad - overlap:
            found.append([(start + dilation * k) % frames for k in range(length)])
            start += length * dilation - overlap
    at = 0
    while at < len(found):
        window = found[at]
        drops = [k for k in range(1, length) if window[k] < window[k - 1]]
        if drops:
            landed = window[drops[0]]
            offsets = [(e - window[0]) % frames for e in window]
            found[at] = [e + frames - 1 - offsets[-1] for e in offsets]
            if landed not in found[(at + 1) % len(found)]:
                found.insert(at + 1, list(range(landed, landed + length)))
        at += 1
    unique: list[list[int]] = []
    for window in found:
        if window not in unique:
            unique.append(window)
    return unique


def test_reference_matches_the_issue_examples():
    """The cases issue 17 names: 10 frames 4/1 at step 4 lacks frame 0 in the original generator; 40 frames 16/4 at
    step 8 needs the inserted window 0..15."""
    assert reference_uniform(10, 4, 1, 1, 4) == [[1, 2, 3, 4], [4, 5, 6, 7], [6, 7, 8, 9], [0, 1, 2, 3]]
    assert list(range(16)) in reference_uniform(40, 16, 4, 1, 8)


def _stride_one_cases():
    """Every (frames, length, overlap) with frames < 36 at four steps (28,000 cases), and a seeded sample of longer
    videos and windows at other steps."""
    for frames in range(3, 36):
        for length in range(2, frames):
            for overlap in range(length):
                for step in range(4):
                    yield frames, length, overlap, step
    rng = random.Random(17)
    for _ in range(2500):
        length = rng.randint(2, 128)
        yield rng.randint(length + 1, 320), length, rng.randint(0, length - 1), rng.randint(0, 100)


def test_stride_one_is_exactly_the_leading_packs_uniform():
    checked = 0
    for frames, length, overlap, step in _stride_one_cases():
        ours = schedules.context_windows("uniform", frames, length, overlap, 1, step, False)
        assert ours == reference_uniform(frames, length, overlap, 1, step), (frames, length, overlap, step)
        checked += 1
    assert checked > 30_000


def _node_space(rng: random.Random, count: int):
    """Random settings over everything the node accepts: frames up to a few hundred, length 2..128, overlap
    -1..length-1, stride 1..8, any step, both loop settings, every schedule; biased to the small and the edges."""
    for _ in range(count):
        length = rng.choice([2, 3, 4, 5, 8, 16, 24, 32, rng.randint(2, 128)])
        frames = rng.choice([1, 2, length - 1, length, length + 1, 2 * length - 1, 2 * length + 1,
                             rng.randint(1, 64), rng.randint(1, 320)])
        overlap = rng.choice([-1, 0, 1, length // 2, length - 2, length - 1, rng.randint(-1, length - 1)])
        overlap = max(-1, min(overlap, length - 1))
        yield (rng.choice(SCHEDULES), max(frames, 1), length, overlap, rng.randint(1, 8),
               rng.choice([0, 1, 2, 3, 4, 7, rng.randint(0, 200)]), rng.random() < 0.5)


def _small_space():
    for frames in range(1, 26):
        for length in range(2, 10):
            for overlap in range(-1, length):
                for stride in (1, 2, 3, 4):
                    for closed_loop in (False, True):
                        yield "static", frames, length, overlap, stride, 0, closed_loop
                        for step in (0, 1, 3):
                            yield "uniform", frames, length, overlap, stride, step, closed_loop
                            yield "looped", frames, length, overlap, stride, step, closed_loop


def _assert_valid(schedule, frames, length, overlap, stride, step, closed_loop):
    resolved = options.ContextOptions(context_length=length, context_overlap=overlap).resolved_overlap
    windows = schedules.context_windows(schedule, frames, length, resolved, stride, step, closed_loop)
    case = (schedule, frames, length, overlap, stride, step, closed_loop)
    assert windows, case
    if frames <= length:
        assert windows == [list(range(frames))], case
        return
    for window in windows:
        assert len(window) == length, case
        assert all(0 <= e < frames for e in window), case
    assert {e for w in windows for e in w} == set(range(frames)), case


def test_every_frame_covered_small_space_exhaustively():
    for case in _small_space():
        _assert_valid(*case)


def test_every_frame_covered_over_the_whole_node_space():
    for case in _node_space(random.Random(2024), 12_000):
        _assert_valid(*case)


def test_the_defaults_at_27_frames_cover_every_step():
    """The render the issue saw go black: 27 frames, 16 / overlap 4, uniform, 20 steps."""
    for step in range(20):
        windows = schedules.context_windows("uniform", 27, 16, 4, 1, step, False)
        assert {e for w in windows for e in w} == set(range(27)), step


def _fewest_intervals(points: set[int], frames: int, length: int) -> int:
    """Minimum number of contiguous windows inside the video that cover `points`, by dynamic programming over the
    frames (independent of the greedy used by the schedule)."""
    best = {frames: 0}
    for frame in range(frames - 1, -1, -1):
        if frame not in points:
            best[frame] = best[frame + 1]
            continue
        start = min(frame, frames - length)
        best[frame] = 1 + best[min(frames, start + length)]
    return best[0]


def test_added_windows_are_the_fewest_that_cover():
    rng = random.Random(5)
    for _ in range(3000):
        length = rng.randint(2, 20)
        frames = rng.randint(length + 1, 90)
        starts = rng.sample(range(frames - length + 1), min(frames - length + 1, rng.randint(0, 3)))
        windows = [list(range(s, s + length)) for s in starts]
        covered = {e for w in windows for e in w}
        missing = set(range(frames)) - covered
        result = schedules._covering(windows, frames, length)
        assert result[: len(windows)] == windows
        added = result[len(windows):]
        assert {e for w in result for e in w} == set(range(frames))
        assert len(added) == _fewest_intervals(missing, frames, length)
        assert all(w == list(range(w[0], w[0] + length)) and 0 <= w[0] <= frames - length for w in added)


@pytest.mark.parametrize("method", ["flat", "pyramid", "gaussian", "overwrite"])
def test_fuse_weights_are_positive_at_every_length(method):
    for length in range(1, 129):
        weights = schedules.fuse_weights(method, length)
        assert len(weights) == length and min(weights) > 0, (method, length)
