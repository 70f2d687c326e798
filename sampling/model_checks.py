"""What every sampling of a model patched by this pack gets, with or without context windows.

- The per-frame batch check before the first step: a Prompt Travel conditioning or ControlNet image batch whose
  length is neither 1 nor the latent's frame count would otherwise be repeated or cut by the host
  (`repeat_to_batch_size`), rendering some frames with other frames' prompts while the prompt reports success.
- The owner: the typed errors our patches raise inside the sampler node (a core node) get the name of the node that
  patched the model, given by nodes/ (this package names no node).

Both live in one OUTER_SAMPLE wrapper: there the conds are the sampler's own, not yet resized to the latent, the
noise has the whole video's frame count (a context handler's PREPARE_SAMPLING wrapper shrinks what it passes on),
and every later step (memory estimate, model calls, windows) runs inside it. Attaching again replaces, never stacks.
"""

from __future__ import annotations

import functools

from ..errors import InputError
from ..host import wrappers
from .context_conds import check_frame_counts

WRAPPER_KEY = "AnimateFlow_model_checks"


def _outer_sample(owner: str | None, executor, *args, **kwargs):
    call = wrappers.WrappedCall(executor, args, kwargs)
    try:
        noise = call["noise"]
        if noise.ndim > 1:
            check_frame_counts(call.conds, int(noise.size(0)))
        return call()
    except InputError as error:
        if error.node is None:
            error.node = owner
        raise


def owner(model_patcher) -> str | None:
    """The node named in this model's sampling errors (None if none was given)."""
    for wrapper in wrappers.of_key(model_patcher, wrappers.OUTER_SAMPLE, WRAPPER_KEY):
        return wrapper.args[0]
    return None


def attach(model_patcher, owner_name: str | None = None) -> None:
    """Check the per-frame batches in every sampling of this (already cloned) model, and name `owner_name` (or the
    owner it already has) in the typed errors raised while it samples."""
    owner_name = owner_name or owner(model_patcher)
    wrappers.add(model_patcher, wrappers.OUTER_SAMPLE, WRAPPER_KEY, functools.partial(_outer_sample, owner_name))
