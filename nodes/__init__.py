"""Registers the pack's nodes with ComfyUI through the V3 node schema (`comfy_api.latest`).

Each node module exports `NODES`, the node classes it defines; this file only gathers them, registers the prompt
check that warns about a motion module no sampler uses (motion_watch.py), the conversion of queued prompts and the
editor's endpoint for the leading pack's and VideoHelperSuite's workflows (migration/server_hooks.py), and, on hosts
that have them, the node replacements that open those workflows with our nodes (migration/registration.py).
`get_node_list` is the one call every host makes (0.3.x has no `on_load`; it has no node replacements either).
"""

from comfy_api.latest import ComfyExtension, io

from ..migration import server_hooks
from ..migration.registration import register_replacements
from . import (context_nodes, frame_nodes, input_nodes, interpolate_nodes, latent_nodes, migration_nodes,
               motion_nodes, motion_scale_nodes, motion_watch, prompt_travel_nodes, sampling_nodes, video_nodes)
from .common import names_its_errors

NODE_MODULES = (context_nodes, frame_nodes, input_nodes, interpolate_nodes, latent_nodes, migration_nodes,
                motion_nodes, motion_scale_nodes, prompt_travel_nodes, sampling_nodes, video_nodes)


class AnimateFlowExtension(ComfyExtension):
    async def on_load(self) -> None:
        await register_replacements()

    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        server_hooks.register()  # before the prompt check, which then sees the converted nodes
        motion_watch.register_prompt_check()
        return [names_its_errors(node) for module in NODE_MODULES for node in module.NODES]


def comfy_entrypoint() -> ComfyExtension:
    return AnimateFlowExtension()
