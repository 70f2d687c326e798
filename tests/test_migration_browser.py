"""Switching in the editor (ComfyUI 0.14+): a workflow made for the leading pack and VideoHelperSuite opens, the
issues panel offers Replace, Replace puts our nodes in with the workflow's settings, and the graph queues from the
editor and renders, in a real browser.

The settings matter most for VideoHelperSuite, which saves widget values by name where the editor's Replace copies
by position: web/migration_values.js sets the converter's values instead, so an MP4 export stays an MP4.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from test_browser_preview import launch, open_editor, require_browser, sync_playwright

pytestmark = [pytest.mark.host, pytest.mark.browser]

WORKFLOWS = Path(__file__).parent / "migration_workflows"
NODES = """() => Object.fromEntries(app.graph._nodes.map(n => [String(n.id), {type: n.type,
    widgets: Object.fromEntries((n.widgets || []).map(w => [w.name, w.value])),
    inputs: Object.fromEntries((n.inputs || []).map(i => [i.name, i.link]))}]))"""


def _require_replacements() -> None:
    require_browser()
    import comfy_api.latest as latest

    if not hasattr(latest.io, "NodeReplace"):
        pytest.skip("this host has no node replacements (ComfyUI 0.14+)")


def _open_and_replace(browser, server, workflow: dict, vue_nodes: bool | None = None):
    """Load the workflow as a user drops it in, open the issues panel from the error overlay, Replace All."""
    page = open_editor(browser, server, vue_nodes=vue_nodes)
    page.evaluate("async (wf) => { await app.loadGraphData(wf); }", workflow)
    page.locator("[data-testid=error-overlay-see-errors]").click(timeout=60_000)
    page.get_by_role("button", name="Replace All").click(timeout=30_000)
    page.wait_for_function("() => !app.graph._nodes.some(n => /^(ADE|VHS)_/.test(n.type))", timeout=30_000)
    # Editor 1.58's Replace leaves its canvas drawing the removed node, which ends the render loop; ours restarts
    # the order (web/migration_values.js), so the canvas still draws afterwards.
    drawn = page.evaluate("() => app.canvas.last_draw_time")
    page.wait_for_function("(t) => app.canvas.last_draw_time > t", arg=drawn, timeout=10_000)
    return page


def _finished(server, known: set[str], timeout: float = 600) -> dict:
    """The one history entry that was not there before, once it has finished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = {k: v for k, v in server.request("/history").items() if k not in known}
        if new and all(entry.get("status", {}).get("completed") is not None for entry in new.values()):
            assert len(new) == 1, sorted(new)
            return next(iter(new.values()))
        time.sleep(1)
    raise AssertionError("the queued workflow did not finish")


def test_ade_and_vhs_workflow_replaces_keeps_its_settings_queues_and_renders(server, sd15_file, motion_module_file,
                                                                             base_dir):
    """tests/migration_workflows/ade_vhs_txt2vid.json: a published txt2vid (legacy loader with context options,
    a GIF and a 10-bit MP4 export, a GIF export fed latents and a vae) with the user's model files picked."""
    _require_replacements()
    workflow = json.loads((WORKFLOWS / "ade_vhs_txt2vid.json").read_text(encoding="utf-8"))
    by_id = {node["id"]: node for node in workflow["nodes"]}
    by_id[53]["widgets_values"][0] = sd15_file
    by_id[33]["widgets_values"][0] = motion_module_file("v2")
    output = base_dir / "output"
    before = set(output.glob("aaa_readme_cn*"))
    known = set(server.request("/history"))
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = _open_and_replace(browser, server, workflow)
            nodes = page.evaluate(NODES)
            notes = page.locator("[data-testid=toast], .p-toast-message",
                                 has_text="settings without an equivalent here")
            notes.first.wait_for(timeout=10_000)
            toast = notes.first.inner_text()
            page.evaluate("async () => { await app.queuePrompt(0, 1); }")
            entry = _finished(server, known)
            assert not page.errors, page.errors
        finally:
            browser.close()
    loader, context, gif, mp4 = nodes["33"], nodes["34"], nodes["52"], nodes["51"]
    assert loader["type"] == "AnimateFlow_AnimateDiffLoader"
    assert loader["widgets"]["beta_schedule"] == "sqrt_linear (AnimateDiff)"
    assert loader["inputs"]["context_options"] is not None and loader["inputs"]["model"] is not None
    assert context["type"] == "AnimateFlow_ContextOptions"
    assert (context["widgets"]["context_length"], context["widgets"]["context_overlap"],
            context["widgets"]["schedule"]) == (16, 4, "looped")
    # VideoHelperSuite's by-name values, which Replace alone leaves at our defaults
    assert gif["type"] == mp4["type"] == "AnimateFlow_VideoCombine"
    assert (gif["widgets"]["save_gif"], gif["widgets"]["save_mp4"]) == (True, False)
    assert (mp4["widgets"]["save_gif"], mp4["widgets"]["save_mp4"], mp4["widgets"]["crf"]) == (False, True, 20)
    assert gif["widgets"]["filename_prefix"] == mp4["widgets"]["filename_prefix"] == "aaa_readme_cn"
    assert "10 or 16 bits" in toast and "51" in toast  # what has no equivalent is said, not dropped
    # VideoHelperSuite decodes latents arriving on `images` beside a vae; ours takes them on `latents`
    latents = nodes["54"]
    assert latents["inputs"]["latents"] is not None and latents["inputs"]["images"] is None
    assert mp4["inputs"]["images"] is not None and mp4["inputs"]["latents"] is None  # decoded images stay
    assert entry["status"]["status_str"] == "success", entry["status"]
    written = sorted(set(output.glob("aaa_readme_cn*")) - before)
    assert any(p.suffix == ".gif" for p in written) and any(p.suffix == ".mp4" for p in written), written
    assert any(p.name.startswith("aaa_readme_cn_latents") and p.suffix == ".gif" for p in written), written
    for path in written:
        path.unlink()


@pytest.mark.parametrize("mode", ["classic", "vue"])
def test_published_workflow_keeps_its_values_where_its_other_packs_stay_missing(server, mode):
    """tests/migration_workflows/marsh000596_wf2.json as published, with the editor's nodes drawn on the canvas and
    as Vue components: other packs' nodes stay missing, ours replace the leading pack's and VideoHelperSuite's with
    their values and links."""
    _require_replacements()
    workflow = json.loads((WORKFLOWS / "marsh000596_wf2.json").read_text(encoding="utf-8"))
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = _open_and_replace(browser, server, workflow, vue_nodes=mode == "vue")
            page.wait_for_function("() => app.graph.getNodeById(35)?.widgets?.find(w => w.name === 'folder')"
                                   "?.value === '3d'", timeout=10_000)
            nodes = page.evaluate(NODES)
            assert not page.errors, page.errors
        finally:
            browser.close()
    loader, context = nodes["33"], nodes["34"]
    assert loader["type"] == "AnimateFlow_AnimateDiffLoader"
    assert loader["widgets"]["model_name"] == "mm_sd_v15_v2.ckpt"
    assert loader["widgets"]["beta_schedule"] == "sqrt_linear (AnimateDiff)"
    assert context["type"] == "AnimateFlow_ContextOptions"
    assert (context["widgets"]["context_length"], context["widgets"]["context_overlap"],
            context["widgets"]["fuse_method"], context["widgets"]["schedule"]) == (16, 4, "flat", "looped")
    assert loader["inputs"]["context_options"] is not None and loader["inputs"]["model"] is not None
    assert nodes["35"]["type"] == "AnimateFlow_LoadImageSequence"
    assert (nodes["35"]["widgets"]["folder"], nodes["35"]["widgets"]["frame_load_cap"]) == ("3d", 48)
    assert nodes["36"]["type"] == "AnimateFlow_VideoCombine"
    assert (nodes["36"]["widgets"]["save_mp4"], nodes["36"]["widgets"]["save_gif"]) == (True, False)
    assert nodes["18"]["type"] == "LineArtPreprocessor"  # another pack's: left for the user to install
