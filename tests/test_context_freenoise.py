"""FreeNoise keeps its promise for every frame count: each window of the base layout holds the first window's noise
frames, each exactly once, reordered. Pure tensor maths: no model, no lock needed.

The base layout is the one FreeNoise refills along: windows starting 0, s, 2s, ... (s = length - overlap), the last
slid back to end on the last frame, which is the static schedule's layout.
"""

from __future__ import annotations

import random

import pytest
import torch

from conftest import pack_module

freenoise = pack_module("sampling.freenoise")
schedules = pack_module("sampling.context_schedules")


def frame_ids(frames: int, length: int, overlap: int, seed: int) -> list[int]:
    """Which original noise frame each output frame holds (noise frame i is the constant i)."""
    noise = torch.arange(frames, dtype=torch.float32).reshape(frames, 1, 1, 1).expand(frames, 4, 2, 2).clone()
    out = freenoise.freenoise_shuffle(noise, length, length - overlap, seed)
    assert torch.equal(out, out[:, :1, :1, :1].expand_as(out)), "whole frames move, never parts of them"
    return out[:, 0, 0, 0].long().tolist()


def test_24_frames_last_window_holds_the_first_windows_frames_once_each():
    """Issue 17: drawing the short last stretch from frames 0-11 gave the last window (8-23) frames 9 and 11 twice
    and none of 1 and 2."""
    for seed in range(20):
        ids = frame_ids(24, 16, 4, seed)
        assert ids[:16] == list(range(16))
        assert sorted(ids[8:24]) == list(range(16)), seed


def test_28_frames_match_the_leading_packs_draw():
    """At 28 frames, 16 / overlap 4, the stretch 16-27 is frames 0-11 in the order of torch.randperm(12) seeded with
    the sampler's seed (the leading pack's FreeNoise, so both packs start from the same noise)."""
    for seed in (0, 1, 123456):
        noise = torch.randn(28, 4, 8, 8, generator=torch.Generator().manual_seed(seed + 1))
        order = torch.randperm(12, generator=torch.Generator().manual_seed(seed))
        out = freenoise.freenoise_shuffle(noise, 16, 12, seed)
        assert torch.equal(out[:16], noise[:16])
        assert torch.equal(out[16:], noise[order])


def test_every_base_window_sees_the_same_noise_for_every_frame_count():
    rng = random.Random(11)
    cases = [(frames, length, overlap) for length in (2, 3, 4, 8, 16) for overlap in range(length)
             for frames in range(1, 3 * length + 5)]
    cases += [(rng.randint(2, 300), length, rng.randint(0, length - 1))
              for length in (rng.randint(2, 64) for _ in range(300))]
    for frames, length, overlap in cases:
        ids = frame_ids(frames, length, overlap, seed=frames)
        if frames <= length:
            assert ids == list(range(frames))
            continue
        first = sorted(ids[:length])
        assert first == list(range(length))
        for window in schedules.context_windows("static", frames, length, overlap, 1, 0, False):
            assert sorted(ids[i] for i in window) == first, (frames, length, overlap, window)


@pytest.mark.parametrize("frames", [17, 20, 40])
def test_the_noise_itself_is_only_reordered(frames):
    noise = torch.randn(frames, 4, 3, 3)
    out = freenoise.freenoise_shuffle(noise, 16, 12, 7)
    first = {tuple(f.flatten().tolist()) for f in noise[:16]}
    assert all(tuple(f.flatten().tolist()) in first for f in out)
