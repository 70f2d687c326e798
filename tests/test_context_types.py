"""Our custom socket types wire only where they work: names that cannot clash with another pack's, declared once,
used by every node and example workflow, and a clear refusal when a foreign object arrives anyway (a hand-written
prompt, or an in-process call). In-process, on the small model: no lock needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import nodes
from conftest import call_node, pack_module
from motion_helpers import small_sd15_model

types = pack_module("nodes.types")
EXAMPLES = Path(__file__).resolve().parent.parent / "example_workflows"
OURS = {"ANIMATEFLOW_CONTEXT_OPTIONS", "ANIMATEFLOW_MOTION_MODULE"}
THEIRS = {"CONTEXT_OPTIONS", "MOTION_MODULE"}


def _socket_types(node_id: str) -> set[str]:
    cls = nodes.NODE_CLASS_MAPPINGS[node_id]
    found = set(cls.RETURN_TYPES)
    for section in cls.INPUT_TYPES().values():
        found |= {entry[0] for entry in section.values() if isinstance(entry[0], str)}
    return found


def test_nodes_use_our_prefixed_types_only():
    assert {types.CONTEXT_OPTIONS, types.MOTION_MODULE} == OURS
    used = set()
    for node_id in nodes.NODE_CLASS_MAPPINGS:
        if node_id.startswith("AnimateFlow_"):
            used |= _socket_types(node_id)
    assert OURS <= used and not used & THEIRS


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.stem)
def test_example_workflows_carry_the_new_type_names(path):
    ui = json.loads(path.read_text())
    slot_types = {slot["type"] for node in ui["nodes"] for slot in node.get("inputs", []) + node.get("outputs", [])}
    link_types = {link[5] for link in ui["links"]}
    assert not (slot_types | link_types) & THEIRS
    for link in ui["links"]:
        if link[5] in OURS:
            source = next(n for n in ui["nodes"] if n["id"] == link[1])
            target = next(n for n in ui["nodes"] if n["id"] == link[3])
            assert source["outputs"][link[2]]["type"] == target["inputs"][link[4]]["type"] == link[5]


class OtherPacksObject:
    context_length = 16


def test_foreign_context_options_are_refused_clearly():
    with pytest.raises(ValueError, match=r"Set Context Options: context_options got .*OtherPacksObject, not this "
                                         r"pack's context options; connect this pack's \(AnimateFlow\) context"):
        call_node("AnimateFlow_SetContextOptions", model=small_sd15_model(), context_options=OtherPacksObject())


@pytest.mark.parametrize("node_id, name, inputs", [
    ("AnimateFlow_ApplyMotionModule", "Apply Motion Module", {"motion_scale": 1.0, "beta_schedule": "auto"}),
    ("AnimateFlow_MotionLoRALoader", "Motion LoRA Loader", {"lora_name": "any.safetensors", "strength": 1.0}),
])
def test_foreign_motion_module_is_refused_clearly(node_id, name, inputs):
    extra = {"model": small_sd15_model()} if node_id == "AnimateFlow_ApplyMotionModule" else {}
    with pytest.raises(ValueError) as error:
        call_node(node_id, motion_module=OtherPacksObject(), **extra, **inputs)
    message = str(error.value)
    assert message.startswith(f"{name}: motion_module must come from this pack's Load Motion Module")
    assert "OtherPacksObject" in message and "replace the connected node" in message
