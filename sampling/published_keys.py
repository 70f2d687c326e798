"""The `transformer_options` keys the context handler publishes for the model call in progress.

Nodes of other packs written for the leading AnimateDiff pack (ControlNet extensions, SparseCtrl, pose and
landmark injectors) learn which frames a call holds from its `ad_params` dict; we fill the same keys the same way,
so those nodes work under our windows too. Our own keys say more: a call may hold several windows (batched), and the
motion module must split the batch at window boundaries, not only between cond and uncond.
"""

AD_PARAMS = "ad_params"
"""The leading pack's dict: `full_length` (frames in the video), `context_length` (frames this call holds per
cond/uncond, = len(sub_idxs)) and `sub_idxs` (those frames' indices in the video, in batch order)."""

WINDOWS = "animateflow_windows"
"""Our dict: `windows` (each window's frame indices, in batch order), `full_length`, `step` (the sampling step the
layout was built for)."""

FRAMES_PER_VIDEO = "animateflow_frames_per_video"
"""Frames per video in this call's batch: the window length while windows run. Temporal layers must attend within
each run of this many frames, never across windows of one batched call."""
