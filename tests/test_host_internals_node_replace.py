"""Pins of the node-replacement API (host/node_replace.py): ComfyUI 0.14 and later take "old node -> new node"
mappings that the server applies to a queued prompt; older hosts take none, and the bridge says so."""

from __future__ import annotations

import asyncio
import logging

import pytest
from conftest import pack_module

pytestmark = pytest.mark.host

node_replace = pack_module("host.node_replace")
self_check = pack_module("host.self_check")
HAS_API = self_check.version_key(self_check.host_version()) >= (0, 14)

OURS = "AnimateFlow_VideoCombine"
REPLACEMENT = node_replace.Replacement(
    old_id="AnimateFlowPin_OldCombine", new_id=OURS, widget_ids=("rate", "name"),
    inputs={"images": "frames", "frame_rate": "rate", "filename_prefix": "name"}, values={"loop_count": 2},
    outputs={1: 0})


def _prompt() -> dict:
    return {
        "1": {"class_type": "AnimateFlowPin_OldCombine", "inputs": {"frames": ["9", 0], "rate": 12, "name": "clip"},
              "_meta": {"title": "old"}},
        "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 1]}, "_meta": {"title": "after"}},
    }


@pytest.mark.skipif(not HAS_API, reason="node replacements came with ComfyUI 0.14")
def test_a_registered_replacement_is_applied_to_a_queued_prompt(monkeypatch):
    """The host's own manager (what the server holds, filled through ComfyAPI().node_replacement.register) turns the
    old node into ours: class, linked and widget inputs, set values, and the links from its outputs."""
    import server
    from app.node_replace_manager import NodeReplaceManager

    manager = NodeReplaceManager()
    holder = type("ServerHolder", (), {"node_replace_manager": manager})()
    monkeypatch.setattr(server.PromptServer, "instance", holder, raising=False)
    assert node_replace.unavailable_reason() is None
    assert asyncio.run(node_replace.register([REPLACEMENT])) == 1
    assert manager.as_dict()["AnimateFlowPin_OldCombine"][0]["old_widget_ids"] == ["rate", "name"]
    prompt = _prompt()
    manager.apply_replacements(prompt)
    assert prompt["1"]["class_type"] == OURS
    assert prompt["1"]["inputs"] == {"images": ["9", 0], "frame_rate": 12, "filename_prefix": "clip", "loop_count": 2}
    assert prompt["2"]["inputs"]["source"] == ["1", 0], "the link from the old output 1 must move to our output 0"


@pytest.mark.skipif(HAS_API, reason="this host has node replacements")
def test_an_older_host_registers_none_and_says_why_once(caplog):
    assert "0.14" in node_replace.unavailable_reason()
    with caplog.at_level(logging.INFO):
        assert asyncio.run(node_replace.register([REPLACEMENT, REPLACEMENT])) == 0
    lines = [r.getMessage() for r in caplog.records if r.name.endswith("node_replace")]
    assert len(lines) == 1 and "2 node replacements not registered" in lines[0] and "0.14" in lines[0], lines


def test_without_a_server_none_is_registered():
    """In-process (tests, benchmarks) there is no server to hold replacements: nothing registered, nothing raised."""
    assert node_replace.unavailable_reason() is not None
    assert asyncio.run(node_replace.register([REPLACEMENT])) == 0
