"""Context windows and fuse weights on plain lists: worked examples.

The expected windows at stride 1 are the original `uniform` generator's (sd-webui-animatediff,
scripts/animatediff_infv2v.py) for its loop settings N / R-P / A, with repeated windows dropped; where N would leave
frames out, `uniform` follows the leading ComfyUI pack (tests/test_context_coverage.py checks that over a scan).
"""

import pytest

from conftest import call_node, pack_module

schedules = pack_module("sampling.context_schedules")
options = pack_module("sampling.context_options")


def r(a, b):
    return list(range(a, b))


def wrap(start, frames, length):
    return [i % frames for i in range(start, start + length)]


def windows(schedule, frames, length=16, overlap=4, stride=1, step=0, closed_loop=False):
    return schedules.context_windows(schedule, frames, length, overlap, stride, step, closed_loop)


def test_ordered_halving_spreads_steps():
    assert [schedules.ordered_halving(s) for s in range(6)] == [0, 0.5, 0.25, 0.75, 0.125, 0.625]


@pytest.mark.parametrize("schedule", ["uniform", "looped", "static"])
def test_short_video_is_one_window(schedule):
    assert windows(schedule, 10) == [r(0, 10)]
    assert windows(schedule, 16) == [r(0, 16)]


def test_uniform_worked_examples():
    assert windows("uniform", 24) == [r(0, 16), r(8, 24)]
    assert windows("uniform", 24, step=1) == [r(8, 24), r(0, 16)]
    assert windows("uniform", 40) == [r(0, 16), r(12, 28), r(24, 40)]
    assert windows("uniform", 40, step=3) == [r(24, 40), r(0, 16), r(2, 18), r(14, 30)]
    assert windows("uniform", 64) == [r(0, 16), r(12, 28), r(24, 40), r(36, 52), r(48, 64)]


def test_uniform_stride_adds_dilated_windows():
    """A dilated window that would wrap is slid to the end too (the leading pack's standard_uniform)."""
    assert windows("uniform", 40, length=8, overlap=2, stride=2) == [
        r(0, 8), r(6, 14), r(12, 20), r(18, 26), r(24, 32), r(30, 38), r(32, 40),
        list(range(0, 16, 2)), list(range(14, 30, 2)), list(range(25, 40, 2)),
    ]


def test_uniform_inserts_the_window_a_slide_uncovers():
    """40 frames, 16/4, step 8: the wrapping window slides to 24..39 and 0..15 is inserted after it (the original's
    N generator has no window holding frame 0 here, which rendered black frames)."""
    assert windows("uniform", 40, step=8) == [r(2, 18), r(14, 30), r(24, 40), r(0, 16)]
    assert windows("uniform", 10, length=4, overlap=1, step=4) == [r(1, 5), r(4, 8), r(6, 10), r(0, 4)]


def test_looped_worked_examples():
    assert windows("looped", 24) == [r(0, 16), wrap(12, 24, 16)]
    assert windows("looped", 40, step=3) == [wrap(30, 40, 16), r(2, 18), r(14, 30)]


def test_closed_loop_wraps_end_into_start():
    assert windows("uniform", 40, closed_loop=True) == [r(0, 16), r(12, 28), r(24, 40), wrap(36, 40, 16)]
    assert windows("static", 40, closed_loop=True) == [r(0, 16), r(12, 28), r(24, 40), wrap(36, 40, 16)]
    assert windows("uniform", 24, step=1, closed_loop=True) == [wrap(12, 24, 16), r(0, 16)]


def test_open_uniform_and_static_never_wrap():
    for frames in (17, 24, 40, 65, 200):
        for step in range(8):
            for window in windows("uniform", frames, step=step) + windows("static", frames):
                assert window == sorted(window) and len(window) == 16


@pytest.mark.parametrize("schedule", ["uniform", "looped", "static"])
@pytest.mark.parametrize("closed_loop", [False, True])
def test_every_frame_is_covered(schedule, closed_loop):
    for frames in (17, 33, 64, 200):
        for step in range(4):
            covered = {i for w in windows(schedule, frames, step=step, closed_loop=closed_loop) for i in w}
            assert covered == set(range(frames))


def test_static_worked_example():
    assert windows("static", 40) == [r(0, 16), r(12, 28), r(24, 40)]
    assert windows("static", 30) == [r(0, 16), r(12, 28), r(14, 30)]


def test_fuse_weights():
    assert schedules.fuse_weights("flat", 4) == [1.0] * 4
    assert schedules.fuse_weights("pyramid", 4) == [1, 2, 2, 1]
    assert schedules.fuse_weights("pyramid", 5) == [1, 2, 3, 2, 1]
    gauss = schedules.fuse_weights("gaussian", 16)
    assert gauss == gauss[::-1] and min(gauss) > 0 and gauss[7] == max(gauss) and gauss[0] < gauss[4]


def test_overlap_minus_one_is_a_quarter():
    assert options.ContextOptions(context_length=16, context_overlap=-1).resolved_overlap == 4
    assert options.ContextOptions(context_length=24, context_overlap=-1).resolved_overlap == 6


@pytest.mark.parametrize("bad, word", [
    (dict(context_length=1), "context_length"),
    (dict(context_length=8, context_overlap=8), "context_overlap"),
    (dict(context_overlap=-2), "context_overlap"),
    (dict(context_stride=0), "context_stride"),
    (dict(schedule="spiral"), "schedule"),
    (dict(fuse_method="median"), "fuse_method"),
])
def test_bad_values_give_clear_errors(bad, word):
    inputs = dict(context_length=16, context_stride=1, context_overlap=4, closed_loop=False,
                  schedule="uniform", fuse_method="pyramid") | bad
    with pytest.raises(ValueError, match=f"^Context Options: .*{word}") as error:
        call_node("AnimateFlow_ContextOptions", **inputs)
    assert error.value.input == word and error.value.fix
