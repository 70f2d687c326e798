"""The live animated preview in a real editor, in both node renderings: while a motion module samples, the panel
shows all frames of the current step, updates as steps go by, loops through the frames, sits on the canvas in the
theme's colours, and goes away when the run ends; its setting turns it off; removing its node stops it."""

from __future__ import annotations

import time

import pytest
from test_browser_preview import ELEMENT_BOX, editor, editors, inside, screenshot  # noqa: F401 (fixtures)

from scripts import workflows

pytestmark = [pytest.mark.host, pytest.mark.browser]

FRAMES, STEPS = 8, 4
PANEL = ".animateflow-live-preview"
SETTING = "AnimateFlow.LivePreview.Enabled"
STATE = f"""() => {{ const p = document.querySelector('{PANEL}');
    return p && {{step: +p.dataset.step, total: +p.dataset.total, frames: +p.dataset.frames, frame: +p.dataset.frame,
                  updates: +p.dataset.updates, playing: p.dataset.playing === 'true',
                  visible: p.checkVisibility(), title: p.querySelector('span').textContent}}; }}"""
# What the server sends (sampling/live_preview.py): a sheet of 4 frames of 32x32 in 2 columns, for node `node`.
SEND = """async (node) => {
    const { api } = await import('/scripts/api.js');
    const c = document.createElement('canvas'); c.width = c.height = 64;
    const g = c.getContext('2d');
    ['#f00', '#0f0', '#00f', '#ff0'].forEach((colour, i) => { g.fillStyle = colour;
        g.fillRect((i % 2) * 32, Math.floor(i / 2) * 32, 32, 32); });
    api.dispatchCustomEvent('animateflow.live_preview', {image: c.toDataURL('image/png'), width: 32, height: 32,
        columns: 2, frames: 4, step: 1, total: 2, fps: 20, node: String(node)});
}"""


def _graph(sd15_file: str, module_file: str, seed: int) -> dict:
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": sd15_file}},
        "2": {"class_type": "AnimateFlow_LoadMotionModule", "inputs": {"model_name": module_file}},
        "3": {"class_type": "AnimateFlow_ApplyMotionModule",
              "inputs": {"model": ["1", 0], "motion_module": ["2", 0], "motion_scale": 1.0, "beta_schedule": "auto"}},
        "4": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": "a boat on a lake"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": FRAMES}},
        "6": {"class_type": "KSampler", "inputs": {"model": ["3", 0], "seed": seed, "steps": STEPS, "cfg": 1.0,
                                                   "sampler_name": "euler", "scheduler": "normal",
                                                   "positive": ["4", 0], "negative": ["4", 0],
                                                   "latent_image": ["5", 0], "denoise": 1.0}},
        "7": {"class_type": "VAEDecode", "inputs": {"samples": ["6", 0], "vae": ["1", 2]}},
        "8": {"class_type": "PreviewImage", "inputs": {"images": ["7", 0]}},
    }


def looks_right(page, name: str) -> None:
    """On the canvas (not over the menus or the sidebar), its colours from the theme; a screenshot."""
    panel = page.evaluate(ELEMENT_BOX, PANEL)
    area = page.evaluate(ELEMENT_BOX, ".graph-canvas-panel") or page.evaluate(ELEMENT_BOX, "#graph-canvas")
    assert inside(panel, area), (panel, area)
    bar = page.evaluate(ELEMENT_BOX, ".side-tool-bar-container")
    assert not bar or panel["left"] >= bar["right"], (panel, bar)
    theme = page.evaluate(f"""() => {{ const p = getComputedStyle(document.querySelector('{PANEL}'));
        const root = getComputedStyle(document.documentElement);
        const probe = document.createElement('div'); probe.style.background = root.getPropertyValue(
            '--comfy-menu-bg'); document.body.append(probe);
        const expected = getComputedStyle(probe).backgroundColor; probe.remove();
        return [p.backgroundColor, expected]; }}""")
    assert theme[0] == theme[1], theme
    screenshot(page, name)


# The real run in one rendering (Vue nodes, the default for new installs): the panel does not depend on how nodes
# are drawn, and the next test shows it on both from the same events the server sends, without sampling twice.
@pytest.mark.parametrize("editor", ["vue"], indirect=True)
def test_live_preview_animates_during_a_run(editor, server, sd15_file, motion_module_file):
    page = editor
    ui = workflows.api_to_ui(_graph(sd15_file, motion_module_file("v3"), 3), server.object_info())
    page.evaluate("async (wf) => { await app.loadGraphData(wf); await app.queuePrompt(0, 1); }", ui)

    page.wait_for_selector(f"{PANEL}[data-step]", state="visible", timeout=600_000)
    steps, frames, shot, deadline = set(), set(), False, time.monotonic() + 600
    while time.monotonic() < deadline:
        state = page.evaluate(STATE)
        steps.add(state["step"])
        frames.add(state["frame"])
        if not shot and state["visible"] and state["step"] >= 2:
            looks_right(page, "live_preview")
            shot = True
        if state["step"] == STEPS and len(frames) > 2 and shot:
            break
        page.wait_for_timeout(50)
    assert state["total"] == STEPS and state["frames"] == FRAMES
    assert state["title"].startswith("KSampler") and f"step {STEPS}/{STEPS}" in state["title"]
    assert len(steps) >= 2, f"the animation updated during the run (saw steps {sorted(steps)})"
    assert len(frames) > 2 and frames <= set(range(FRAMES)), "it loops through the frames"
    varied = page.evaluate(f"""() => {{ const c = document.querySelector('{PANEL} canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let lo = 255, hi = 0; for (let i = 0; i < d.length; i += 4) {{ lo = Math.min(lo, d[i]);
        hi = Math.max(hi, d[i]); }} return [c.width, c.height, hi - lo]; }}""")
    assert varied[0] == 256 and varied[1] == 256 and varied[2] > 0, varied
    # The run ends: the panel goes (the result is on the output node now) and its timer stops.
    page.wait_for_function(f"() => !document.querySelector('{PANEL}').checkVisibility()", timeout=120_000)
    assert not page.evaluate(STATE)["playing"]


def test_setting_turns_the_panel_off_and_removing_its_node_stops_it(editor):
    page = editor
    node, title = page.evaluate("""() => { const n = LiteGraph.createNode('EmptyImage'); app.graph.add(n);
                                           return [n.id, n.title]; }""")
    page.evaluate("async () => { const { api } = await import('/scripts/api.js');"
                  " api.dispatchCustomEvent('execution_start', {}); }")
    page.evaluate(SEND, node)
    page.wait_for_function(f"() => document.querySelector('{PANEL}')?.checkVisibility()", timeout=10_000)
    before = page.evaluate(STATE)
    assert before["playing"] and before["title"].startswith(title), before
    looks_right(page, "live_preview_panel")

    page.evaluate(f"async () => {{ await app.extensionManager.setting.set('{SETTING}', false); }}")
    try:
        state = page.evaluate(STATE)
        assert not state["visible"] and not state["playing"], "turning the setting off hides the panel"
        page.evaluate(SEND, node)
        page.wait_for_timeout(500)
        state = page.evaluate(STATE)
        assert not state["visible"] and state["updates"] == before["updates"], "updates are ignored while off"
    finally:
        page.evaluate(f"async () => {{ await app.extensionManager.setting.set('{SETTING}', true); }}")

    page.evaluate(SEND, node)
    page.wait_for_function(f"() => document.querySelector('{PANEL}')?.checkVisibility()", timeout=10_000)
    page.evaluate("(id) => app.graph.remove(app.graph.getNodeById(id))", node)
    state = page.evaluate(STATE)
    assert not state["visible"] and not state["playing"], "removing the previewed node closes the panel"
    page.wait_for_timeout(300)
    assert page.evaluate(STATE)["frame"] == state["frame"], "and its timer stopped"
