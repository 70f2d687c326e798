"""Spreading context windows over GPUs (sampling/window_spread.py), as properties over many window lists.

Pure functions, no model: every window is assigned exactly once, each device's share is within one window of its
weighted share, results fused in window order whatever device ran them and in whatever order the devices finished,
and that fuse gives the same bits as fusing on one device.
"""

from __future__ import annotations

import random

import pytest
import torch

from conftest import pack_module

spread = pack_module("sampling.window_spread")
fuse_module = pack_module("sampling.context_fuse")
schedules = pack_module("sampling.context_schedules")

TRIALS = 400


def random_case(rng: random.Random) -> tuple[int, list[float]]:
    devices = rng.randint(1, 5)
    weights = [rng.choice([1.0, rng.uniform(0.05, 20.0), rng.uniform(0.5, 2.0)]) for _ in range(devices)]
    return rng.randint(0, 80), weights


def test_every_window_is_assigned_exactly_once_in_contiguous_shards():
    rng = random.Random(1)
    for _ in range(TRIALS):
        windows, weights = random_case(rng)
        assignment = spread.assign(windows, weights)
        shards = spread.shards(assignment, len(weights))
        assert len(assignment) == windows
        assert sorted(w for shard in shards for w in shard) == list(range(windows))
        assert all(0 <= d < len(weights) for d in assignment)
        assert assignment == sorted(assignment)  # contiguous, the main device first
        for shard in shards:
            assert shard == list(range(shard[0], shard[0] + len(shard))) if shard else True


def test_each_device_gets_its_weighted_share_within_one_window():
    rng = random.Random(2)
    for _ in range(TRIALS):
        windows, weights = random_case(rng)
        counts = spread.shares(windows, weights)
        assert sum(counts) == windows
        for count, weight in zip(counts, weights):
            assert abs(count - windows * weight / sum(weights)) < 1
    assert spread.shares(10, [3.0, 1.0]) == [8, 2] and spread.shares(10, [1.0, 1.0]) == [5, 5]
    assert spread.shares(3, [1.0, 1.0]) == [2, 1]  # a tie goes to the main device


def test_one_device_gets_every_window():
    for windows in range(0, 30):
        assert spread.assign(windows, [2.5]) == [0] * windows


@pytest.mark.parametrize("weights", [[], [1.0, 0.0], [1.0, float("nan")], [-1.0]])
def test_weights_must_be_positive(weights):
    with pytest.raises(ValueError):
        spread.shares(4, weights)


def test_calls_group_only_consecutive_windows_up_to_the_limit():
    rng = random.Random(3)
    for _ in range(TRIALS):
        shard = sorted(rng.sample(range(60), rng.randint(0, 30)))
        per_call = rng.randint(1, 6)
        groups = spread.calls(shard, per_call)
        assert [w for g in groups for w in g] == shard
        for group in groups:
            assert 1 <= len(group) <= per_call and group == list(range(group[0], group[0] + len(group)))
        for a, b in zip(groups, groups[1:]):  # a new group only where the limit or a gap forces one
            assert len(a) == per_call or b[0] != a[-1] + 1
    assert spread.calls([0, 1, 2, 3, 4], 1) == [[0], [1], [2], [3], [4]]


def test_fuse_order_is_window_order_whatever_the_assignment_and_finishing_order():
    rng = random.Random(4)
    for _ in range(TRIALS):
        windows, weights = random_case(rng)
        shards = spread.shards(spread.assign(windows, weights), len(weights))
        finishing = list(range(len(weights)))
        rng.shuffle(finishing)
        results = [(w, f"result of {w}") for d in finishing for w in shards[d]]
        assert spread.fuse_order(results, windows) == [f"result of {w}" for w in range(windows)]


def test_fuse_order_refuses_a_missing_or_repeated_window():
    with pytest.raises(ValueError, match="did not come back"):
        spread.fuse_order([(0, "a"), (2, "c")], 3)
    with pytest.raises(ValueError, match="twice"):
        spread.fuse_order([(0, "a"), (1, "b"), (1, "b"), (2, "c")], 3)


@pytest.mark.parametrize("method", ["pyramid", "flat", "gaussian", "overwrite"])
def test_spread_then_fused_gives_the_bits_of_one_device(method):
    """The real per-frame fuse over real window schedules: windows computed on any device and gathered in any order
    fuse to exactly what one device's sequential loop gives."""
    rng = random.Random(5)
    for _ in range(15):
        frames, length = rng.randint(9, 70), rng.choice([4, 8, 16])
        overlap = rng.randint(0, length - 1)
        schedule = rng.choice(["uniform", "static", "looped"])
        windows = [fuse_module.FrameWindow(w) for w in schedules.context_windows(
            schedule, frames, length, overlap, rng.randint(1, 3), rng.randint(0, 5), rng.random() < 0.3)]
        x = torch.randn(frames, 4, 3, 3, generator=torch.Generator().manual_seed(rng.randint(0, 10**6)))
        outputs = [[torch.randn(w.context_length, 4, 3, 3), torch.randn(w.context_length, 4, 3, 3)] for w in windows]

        one = fuse_module.WindowFuse(method, x, 2)
        for window, out in zip(windows, outputs):
            one.add(window, out)

        _, weights = random_case(rng)
        shards = spread.shards(spread.assign(len(windows), weights), len(weights))
        finishing = list(range(len(weights)))
        rng.shuffle(finishing)
        gathered = spread.fuse_order([(w, outputs[w]) for d in finishing for w in shards[d]], len(windows))
        several = fuse_module.WindowFuse(method, x, 2)
        for window, out in zip(windows, gathered):
            several.add(window, out)
        for a, b in zip(one.result(), several.result()):
            assert torch.equal(a, b)


def test_speed_meter_weights_follow_measured_speed():
    meter = spread.SpeedMeter([1.0, 1.0])
    assert meter.weights() == [1.0, 1.0]
    meter.record(0, 9, 1.0)
    meter.record(1, 3, 1.0)  # the second GPU is a third as fast
    assert spread.shares(12, meter.weights()) == [9, 3]
    for _ in range(20):  # it gets as fast as the first: the split moves there over a few steps
        meter.record(1, 9, 1.0)
    assert spread.shares(12, meter.weights()) == [6, 6]
    meter.record(1, 0, 0.0)  # a device that ran nothing this step keeps its estimate
    assert spread.shares(12, meter.weights()) == [6, 6]


def test_speed_meter_scales_an_untimed_device_prior_into_measured_units():
    meter = spread.SpeedMeter([1.0, 2.0, 1.0])  # core's relative_speed: the second GPU twice as fast
    assert spread.shares(8, meter.weights()) == [2, 4, 2]
    meter.record(0, 10, 2.0)
    meter.record(2, 10, 2.0)  # 5 windows/s each; the untimed one is assumed twice that
    assert meter.weights() == pytest.approx([5.0, 10.0, 5.0])
