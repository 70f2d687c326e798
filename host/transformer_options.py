"""Keys of the host's `transformer_options`, the dict every model call carries down to each layer: the host's own,
and the ones we publish there for the model call in progress.

The host's: `cond_or_uncond` (one entry per video of the batch), `sample_sigmas` (the run's sigmas),
`context_window` (the window of the host's own context handler; we put ours there too, since other packs read its
`index_list`), and `patches` (per-layer patches such as `forward_timestep_embed_patch`).

Ours: nodes of other packs written for the leading AnimateDiff pack (ControlNet extensions, SparseCtrl, pose and
landmark injectors) learn which frames a call holds from its `ad_params` dict; we fill the same keys the same way,
so those nodes work under our windows too. Our own keys say more: a call may hold several windows (batched), and
the motion module must split the batch at window boundaries, not only between cond and uncond.
"""

TRANSFORMER_OPTIONS = "transformer_options"
"""The key of this dict in a model's `model_options`."""
COND_OR_UNCOND = "cond_or_uncond"
SAMPLE_SIGMAS = "sample_sigmas"
CONTEXT_WINDOW = "context_window"
PATCHES = "patches"
FORWARD_TIMESTEP_EMBED_PATCH = "forward_timestep_embed_patch"

AD_PARAMS = "ad_params"
"""The leading pack's dict: `full_length` (frames in the video), `context_length` (frames this call holds per
cond/uncond, = len(sub_idxs)) and `sub_idxs` (those frames' indices in the video, in batch order)."""

WINDOWS = "animateflow_windows"
"""Our dict: `windows` (each window's frame indices, in batch order), `full_length`, `step` (the sampling step the
layout was built for)."""

FRAMES_PER_VIDEO = "animateflow_frames_per_video"
"""Frames per video in this call's batch: the window length while windows run. Temporal layers must attend within
each run of this many frames, never across windows of one batched call."""
