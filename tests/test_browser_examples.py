"""Every example workflow in the real editor: it loads, the editor's own conversion gives its API twin, and
the txt2vid example queues and plays in the node's preview."""

from __future__ import annotations

import json

import pytest
from test_browser_preview import ARTIFACTS, close_dialogs, launch, open_editor, require_browser
from test_examples import API_FILES, EXAMPLES, _defaults_filled

from scripts import workflows

pytestmark = [pytest.mark.host, pytest.mark.browser]

SHRINK_TXT2VID = """() => {
    for (const node of app.graph._nodes) {
        const set = (name, value) => { const w = node.widgets?.find(w => w.name === name); if (w) w.value = value; };
        if (node.type === 'EmptyLatentImage') { set('width', 64); set('height', 64); set('batch_size', 8); }
        if (node.type === 'KSampler') set('steps', 1);
    }
}"""
# Load Video's own preview appears once its file has loaded: wait for it, so the prompt is checked with it there.
PREVIEWS_LOADED = """() => app.graph._nodes.filter(n => n.type === 'AnimateFlow_LoadVideo')
    .every(n => n.widgets?.some(w => w.name === 'video-preview'))"""


@pytest.fixture(scope="module")
def editor(server, sd15_file, motion_module_file, motion_lora_file, example_inputs):
    require_browser()
    from playwright.sync_api import sync_playwright

    for fmt in ("v2", "lightning4"):  # every module an example names, so its combo offers the file
        motion_module_file(fmt)
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            yield open_editor(browser, server, width=1600, height=1000)
        finally:
            browser.close()


@pytest.mark.parametrize("api_path", API_FILES, ids=lambda p: p.stem)
def test_editor_loads_example_and_queues_its_api_twin(editor, server, api_path):
    ui = json.loads((EXAMPLES / api_path.name).read_text())
    unknown = editor.evaluate("(types) => types.filter(t => !LiteGraph.registered_node_types[t])",
                              sorted({n["type"] for n in ui["nodes"]}))
    assert not unknown, f"node types the editor does not know: {unknown}"
    editor.evaluate("async (wf) => { await app.loadGraphData(wf); }", ui)
    assert editor.evaluate("() => app.graph._nodes.length") == len(ui["nodes"])
    editor.wait_for_function(PREVIEWS_LOADED, timeout=60_000)
    prompt = editor.evaluate("async () => (await app.graphToPrompt()).output")
    expected = _defaults_filled(json.loads(api_path.read_text()), server.object_info())
    assert workflows.strip_meta(prompt) == expected
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    close_dialogs(editor)
    editor.mouse.click(800, 960)
    editor.keyboard.press(".")  # the editor's "fit view" shortcut: the whole graph in the screenshot
    editor.wait_for_timeout(500)
    editor.screenshot(path=str(ARTIFACTS / f"example_{api_path.stem}.png"))
    assert not editor.errors, editor.errors


def test_txt2vid_example_queues_and_plays_in_the_preview(editor):
    editor.evaluate("async (wf) => { await app.loadGraphData(wf); }",
                    json.loads((EXAMPLES / "txt2vid.json").read_text()))
    editor.evaluate(SHRINK_TXT2VID)
    editor.evaluate("async () => { await app.queuePrompt(0, 1); }")
    editor.wait_for_selector(".animateflow-preview video", state="attached", timeout=600_000)
    state = editor.wait_for_function(
        """() => { const v = document.querySelector('.animateflow-preview video');
                   return v && v.readyState >= 2 && !v.error && [v.videoWidth, v.videoHeight]; }""",
        timeout=60_000).json_value()
    assert state == [64, 64]
    close_dialogs(editor)
    editor.screenshot(path=str(ARTIFACTS / "example_txt2vid_rendered.png"))
    assert not editor.errors, editor.errors
