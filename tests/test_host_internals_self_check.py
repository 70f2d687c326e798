"""The start-up self-check (host/self_check.py) and the server bridge (host/server.py).

On every host we test, the check lists nothing: each bridge's NEEDS are all there. A missing internal (simulated by
removing it from the real host module) gives exactly one warning line, naming the host version and what will not
work, and never an exception: the pack still loads.
"""

from __future__ import annotations

import logging

import comfy.patcher_extension
import pytest
from conftest import pack_module
from motion_helpers import small_sd15_model

pytestmark = pytest.mark.host

self_check = pack_module("host.self_check")
needs = pack_module("host.needs")
server = pack_module("host.server")


def test_every_bridge_finds_what_it_needs_on_this_host():
    found = self_check.bridge_needs()
    assert {bridge for bridge, _ in found} == set(self_check.BRIDGES), "every bridge declares its NEEDS"
    assert self_check.problems() == [], "a host we test must have every internal the pack leans on"
    assert self_check.range_problem(self_check.host_version()) is None, "this host is inside the tested range"


def test_a_missing_internal_is_one_line_naming_it_the_host_and_the_feature(monkeypatch, caplog):
    monkeypatch.delattr(comfy.patcher_extension.WrappersMP, "SAMPLER_SAMPLE")
    with caplog.at_level(logging.WARNING):
        lines = self_check.run()
    logged = [r.getMessage() for r in caplog.records if r.name.endswith("self_check")]
    assert logged == lines and len(lines) == 1, lines
    assert "WrappersMP.SAMPLER_SAMPLE" in lines[0] and "FreeInit will not work" in lines[0]
    assert f"ComfyUI {self_check.host_version()}" in lines[0]


def test_a_changed_signature_and_a_missing_module_are_named_too():
    changed = needs.Need("comfy.patcher_extension:PatcherInjection", "a pin feature", params=("inject", "rename"))
    gone = needs.Need("comfy.no_such_module:Thing", "another pin feature")
    lines = self_check.problems([("pin", changed), ("pin", gone)], version="0.99.0")
    assert lines == [
        "AnimateFlow on ComfyUI 0.99.0: comfy.patcher_extension:PatcherInjection takes no rename, so a pin feature "
        "will not work.",
        "AnimateFlow on ComfyUI 0.99.0: no module comfy.no_such_module, so another pin feature will not work."]


def test_server_internals_are_checked_where_the_server_runs(server, base_dir):
    """In-process the server's module is not loaded (on 0.3.75 it cannot even be imported there), so its needs are
    checked only where it is: the real server checked them at start-up and logged no line."""
    unloaded = needs.Need("animateflow_never_loaded:Thing", "a pin feature", when_loaded=True)
    assert unloaded.problem() is None
    assert needs.Need("animateflow_never_loaded:Thing", "a pin feature").problem() == \
        "no module animateflow_never_loaded"
    log = (base_dir / "server.log").read_text(errors="replace").rsplit("Total VRAM", 1)[-1]  # this server's start
    assert "AnimateFlow on ComfyUI" not in log and "could not check" not in log, "the server logged a missing internal"


def test_a_host_outside_the_range_is_warned_about_not_refused():
    newer = self_check.range_problem("0.40.2")
    assert "newer" in newer and self_check.NEWEST_TESTED in newer
    assert "older" in self_check.range_problem("0.3.60")
    assert self_check.range_problem(self_check.OLDEST_TESTED) is None
    assert self_check.range_problem(self_check.NEWEST_TESTED) is None
    assert self_check.range_problem("not a version") is None


def test_the_check_never_raises(monkeypatch):
    monkeypatch.setattr(self_check, "bridge_needs", lambda: 1 / 0)
    lines = self_check.run()
    assert len(lines) == 1 and "could not check" in lines[0]


def test_the_tested_range_is_the_one_pyproject_and_readme_state():
    """pyproject's requires-comfyui is the oldest tested host (ComfyUI-Manager refuses installs outside it, so it has
    no upper bound: a newer host gets the self-check's warning instead); README states the whole tested range."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    stated = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["comfy"]["requires-comfyui"]
    assert stated == f">={self_check.OLDEST_TESTED}"
    readme = (root / "README.md").read_text()
    assert f"ComfyUI {self_check.OLDEST_TESTED} to {self_check.NEWEST_TESTED}" in readme


def test_without_a_server_the_editor_bridges_do_nothing():
    """In-process there is no PromptServer: messages, events and the prompt check are skipped, never raised."""
    assert server.prompt_server() is None
    assert server.show_on_node("1", "text") is False
    assert server.client_sender("event") is None
    assert server.add_prompt_handler(lambda data: data) is False


def test_node_output_types_and_latent_previewer():
    """The prompt check reads a node class's RETURN_TYPES (unknown classes: None); the live preview gets the host's
    previewer for the model's latent format (Latent2RGB at least) that draws one PIL image per latent."""
    import torch

    assert server.node_output_types("KSampler") == ("LATENT",)
    assert server.node_output_types("AnimateFlow_VideoCombine") is not None
    assert server.node_output_types("NoSuchNode") is None
    model = small_sd15_model()
    previewer = server.latent_previewer(model.load_device, model.model.latent_format)
    image = previewer.decode_latent_to_preview(torch.zeros(1, 4, 8, 8))
    assert image.size == (8, 8)
