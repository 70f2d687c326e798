"""Saying when motion did not happen, instead of a silent still image per frame.

Three ways a run applies a motion module and gets none of its motion, each said once in the log and on the Apply
Motion Module node (ComfyUI's progress text, which the editor shows on the node):

- the sampler is fed another model: Apply Motion Module's MODEL reaches no node that makes latents, so the
  motion module never runs. Seen in the prompt when it is queued (`PromptServer.add_on_prompt_handler`): a
  dangling Apply node does not even execute, so nothing at run time could say it;
- one frame per video (a latent batch of 1): temporal attention over one frame is no attention. Seen by the
  motion module calls during sampling;
- motion_scale 0 everywhere (scale, schedule, block multipliers or mask): said when the node runs.
"""

from __future__ import annotations

import logging

from ..host import server as host_server
from ..host import wrappers

log = logging.getLogger(__name__)

APPLY_NODE_CLASS = "AnimateFlow_ApplyMotionModule"
NODE = "Apply Motion Module"
WRAPPER_KEY = "AnimateFlow_motion_watch"


def _label(node_id: str | None) -> str:
    return f"{NODE} (node {node_id})" if node_id is not None else NODE


def warn(node_id: str | None, text: str, client_id: str | None = None) -> None:
    """One warning: in the log, and on the node in the editor when a server is running."""
    log.warning("%s: %s", _label(node_id), text)
    if node_id is not None:
        host_server.show_on_node(node_id, f"⚠ {text}", client_id)


def scale_zero_text() -> str:
    return ("motion_scale is 0 for every frame, block and pixel, so the motion module adds nothing and each frame "
            "is a still image of its own. Raise motion_scale (1 is the trained strength) or the schedule's values.")


class MotionWatch:
    """What the motion module of one Apply Motion Module clone saw during a sampling run.

    One object for the model and all its later clones: ComfyUI deep-copies a clone's wrappers (so this object, bound
    to the OUTER_SAMPLE wrapper) but not its transformer patches (where the layer handler holds it), and a copy
    would count nothing and warn on every clone, e.g. after Set Context Options or a LoRA loader.
    """

    def __init__(self, node_id: str | None):
        self.node_id = node_id
        self.calls = 0
        self.max_frames = 0

    def __copy__(self) -> MotionWatch:
        return self

    def __deepcopy__(self, memo) -> MotionWatch:
        return self

    def saw(self, frames: int) -> None:
        self.calls += 1
        self.max_frames = max(self.max_frames, frames)

    def problem(self) -> str | None:
        if self.calls == 0:
            return ("the sampler ran this model but its motion module was never called (another node replaced "
                    "the UNet's blocks?), so the frames were sampled as separate images.")
        if self.max_frames <= 1:
            return ("the sampler gave the motion module one frame per video, so there was no motion to make: the "
                    "latent batch is the frame count. Set Empty Latent Image's batch_size (or Latent Init Blend's "
                    "frames) to the number of frames, e.g. 16.")
        return None

    def outer_sample_wrapper(self, executor, *args, **kwargs):
        """OUTER_SAMPLE wrapper: count this run's motion module calls, then say once what went wrong, if anything."""
        self.calls, self.max_frames = 0, 0
        result = executor(*args, **kwargs)
        problem = self.problem()
        if problem is not None:
            warn(self.node_id, problem)
        return result


def attach(model_patcher, watch: MotionWatch) -> None:
    wrappers.add(model_patcher, wrappers.OUTER_SAMPLE, WRAPPER_KEY, watch.outer_sample_wrapper)


def unsampled_apply_nodes(prompt: dict, output_types) -> list[str]:
    """Ids of Apply Motion Module nodes whose MODEL reaches no node that makes latents (a sampler).

    `output_types(class_type)` lists a node class's output types. Any node downstream producing LATENT counts as
    a sampler, so a pack's own sampler nodes count too; a node of an unknown class counts as one (no warning
    when in doubt).
    """
    consumers: dict[str, list[str]] = {}
    for node_id, node in prompt.items():
        for value in (node.get("inputs") or {}).values():
            if isinstance(value, list) and len(value) == 2 and isinstance(value[0], (str, int)):
                consumers.setdefault(str(value[0]), []).append(str(node_id))
    unsampled = []
    for node_id, node in prompt.items():
        if node.get("class_type") != APPLY_NODE_CLASS:
            continue
        seen, stack = set(), list(consumers.get(str(node_id), []))
        reached = False
        while stack and not reached:
            current = stack.pop()
            if current in seen or current not in prompt:
                continue
            seen.add(current)
            types = output_types(prompt[current].get("class_type"))
            reached = types is None or "LATENT" in types
            stack.extend(consumers.get(current, []))
        if not reached:
            unsampled.append(str(node_id))
    return unsampled


def unsampled_text() -> str:
    return ("its MODEL output reaches no sampler, so this prompt samples a model without the motion module and "
            "every frame comes out as a separate still image. Connect Apply Motion Module's MODEL to the sampler's "
            "model input (or to the guider of SamplerCustomAdvanced).")


def check_prompt(json_data: dict) -> dict:
    """PromptServer on_prompt handler: warns about Apply Motion Module nodes no sampler uses; never changes the
    prompt and never fails it (ComfyUI's own validation decides what runs)."""
    prompt = json_data.get("prompt")
    if isinstance(prompt, dict):
        for node_id in unsampled_apply_nodes(prompt, host_server.node_output_types):
            warn(node_id, unsampled_text(), json_data.get("client_id"))
    return json_data


_registered = False


def register_prompt_check() -> None:
    """Install `check_prompt` on the running server, once; nothing happens without a server (tests in-process)."""
    global _registered
    if not _registered:
        _registered = host_server.add_prompt_handler(check_prompt)
