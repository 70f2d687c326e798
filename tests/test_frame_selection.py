"""Select Every Nth Image / Latent / Mask: slicing semantics over a whole small input space, a latent's per-frame
entries kept in step, and errors that name the input."""

from __future__ import annotations

import pytest
import torch
from conftest import call_node, pack_module

frame_selection = pack_module("media.frame_selection")
errors = pack_module("errors")


def test_every_nth_after_skipping_over_the_whole_small_space():
    """VideoHelperSuite's rule, batch[skip::nth], for every batch size, step and skip it accepts."""
    for frames in range(1, 9):
        batch = torch.arange(frames, dtype=torch.float32).view(frames, 1, 1).expand(frames, 2, 3)
        for nth in range(1, 10):
            for skip in range(frames):
                picked = frame_selection.select_frames(batch, nth, skip)
                assert picked[:, 0, 0].tolist() == list(range(frames))[skip::nth], (frames, nth, skip)


def test_a_latents_per_frame_entries_follow_and_shared_ones_stay():
    samples = torch.randn(6, 4, 2, 2, generator=torch.Generator().manual_seed(1))
    per_frame = {"samples": samples, "noise_mask": torch.rand(6, 1, 16, 16), "batch_index": [10, 11, 12, 13, 14, 15]}
    picked = frame_selection.select_latent_frames(per_frame, 2, 1)
    assert torch.equal(picked["samples"], samples[[1, 3, 5]])
    assert torch.equal(picked["noise_mask"], per_frame["noise_mask"][[1, 3, 5]])
    assert picked["batch_index"] == [11, 13, 15]
    shared = {"samples": samples, "noise_mask": torch.rand(1, 1, 16, 16)}
    assert frame_selection.select_latent_frames(shared, 4, 0)["noise_mask"] is shared["noise_mask"]
    assert per_frame["samples"] is samples and len(per_frame["batch_index"]) == 6  # the input is left as it was


def test_nodes_give_the_selection_and_its_count():
    images = torch.rand(7, 8, 8, 3)
    picked, count = call_node("AnimateFlow_SelectEveryNthImage", images=images, select_every_nth=3,
                              skip_first_frames=1)
    assert count == 2 and torch.equal(picked, images[[1, 4]])
    masks, count = call_node("AnimateFlow_SelectEveryNthMask", masks=images[..., 0], select_every_nth=1,
                             skip_first_frames=5)
    assert count == 2 and torch.equal(masks, images[5:, ..., 0])
    latents, count = call_node("AnimateFlow_SelectEveryNthLatent", latents={"samples": torch.zeros(5, 4, 1, 1)},
                               select_every_nth=2, skip_first_frames=0)
    assert count == 3 and latents["samples"].shape[0] == 3


def test_skipping_every_frame_is_an_error_naming_the_node_and_the_input():
    with pytest.raises(errors.InputError, match=r"Select Every Nth Image: skip_first_frames = 4 skips all 4 frames"
                                               r".*skip fewer than 4"):
        call_node("AnimateFlow_SelectEveryNthImage", images=torch.rand(4, 8, 8, 3), select_every_nth=1,
                  skip_first_frames=4)
    with pytest.raises(errors.InputError, match="select_every_nth is 0"):
        frame_selection.select_frames(torch.rand(3, 2, 2), 0, 0)
