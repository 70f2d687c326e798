"""Registers the pack's nodes with ComfyUI through the V3 node schema (`comfy_api.latest`).

Each node module exports `NODES`, the node classes it defines; this file only gathers them, and registers the
prompt check that warns about a motion module no sampler uses (motion/motion_watch.py).
"""

from comfy_api.latest import ComfyExtension, io

from ..migration.registration import register_replacements
from ..motion import motion_watch
from . import (context_nodes, input_nodes, interpolate_nodes, latent_nodes, migration_nodes, motion_nodes,
               motion_scale_nodes, prompt_travel_nodes, sampling_nodes, video_nodes)

NODE_MODULES = (context_nodes, input_nodes, interpolate_nodes, latent_nodes, migration_nodes, motion_nodes,
                motion_scale_nodes, prompt_travel_nodes, sampling_nodes, video_nodes)


class AnimateFlowExtension(ComfyExtension):
    async def on_load(self) -> None:
        await register_replacements()  # the leading pack's and VHS's nodes → ours, on hosts that support it

    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        motion_watch.register_prompt_check()
        return [node for module in NODE_MODULES for node in module.NODES]


def comfy_entrypoint() -> ComfyExtension:
    return AnimateFlowExtension()
