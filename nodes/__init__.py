"""Registers the pack's nodes with ComfyUI through the V3 node schema (`comfy_api.latest`).

Each node module exports `NODES`, the node classes it defines; this file only gathers them, and registers the
prompt check that warns about a motion module no sampler uses (motion_watch.py). `get_node_list` is the one call
every host makes (0.3.x has no `on_load`).
"""

from comfy_api.latest import ComfyExtension, io

from . import (context_nodes, input_nodes, interpolate_nodes, latent_nodes, motion_nodes, motion_scale_nodes,
               motion_watch, prompt_travel_nodes, sampling_nodes, video_nodes)
from .common import names_its_errors

NODE_MODULES = (context_nodes, input_nodes, interpolate_nodes, latent_nodes, motion_nodes, motion_scale_nodes,
                prompt_travel_nodes, sampling_nodes, video_nodes)


class AnimateFlowExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        motion_watch.register_prompt_check()
        return [names_its_errors(node) for module in NODE_MODULES for node in module.NODES]


def comfy_entrypoint() -> ComfyExtension:
    return AnimateFlowExtension()
