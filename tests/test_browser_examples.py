"""Every example workflow in the real editor, in both node renderings: it loads tidy (no node over another, once
Load Video's preview is in), the editor's own conversion gives its API twin, Load Video takes an upload and
previews it, and the txt2vid example queues and plays in the node's preview.

`ANIMATEFLOW_THUMBNAILS=1` also rewrites example_workflows/<name>.jpg (the template browser's thumbnails) from
the Vue rendering, the editor's default for new installs."""

from __future__ import annotations

import io
import json
import os
import time

import pytest
from test_browser_preview import NODE_BOX, editor, editors_fixture, inside, screenshot, settled  # noqa: F401 (fixtures)
from test_examples import API_FILES, EXAMPLES, _defaults_filled

from scripts import workflows

pytestmark = [pytest.mark.host, pytest.mark.browser]

editors = editors_fixture(width=1600, height=1000)
THUMBNAIL_SIZE = (600, 267)

SHRINK_TXT2VID = """() => {
    for (const node of app.graph._nodes) {
        const set = (name, value) => { const w = node.widgets?.find(w => w.name === name); if (w) w.value = value; };
        if (node.type === 'EmptyLatentImage') { set('width', 64); set('height', 64); set('batch_size', 8); }
        if (node.type === 'KSampler') set('steps', 1);
    }
}"""
# Load Video's own preview appears once its file has loaded: wait for it, so the prompt and the layout are checked
# with it there.
PREVIEWS_LOADED = """() => app.graph._nodes.filter(n => n.type === 'AnimateFlow_LoadVideo')
    .every(n => n.widgets?.some(w => w.name === 'video-preview'))"""
# Pairs of nodes whose boxes (title bar included) overlap on screen.
OVERLAPS = f"""() => {{
    const box = {NODE_BOX};
    const nodes = app.graph._nodes.map(n => [`${{n.title}} (#${{n.id}})`, box(n.id)]);
    const hits = [];
    for (let i = 0; i < nodes.length; i++) for (let j = i + 1; j < nodes.length; j++) {{
        const [a, p] = nodes[i], [b, q] = nodes[j];
        if (p.left < q.right && q.left < p.right && p.top < q.bottom && q.top < p.bottom) hits.push([a, b]);
    }}
    return hits;
}}"""


@pytest.fixture(scope="module")
def inputs(sd15_file, motion_module_file, motion_lora_file, example_inputs):
    for fmt in ("v2", "lightning4"):  # every module an example names, so its combo offers the file
        motion_module_file(fmt)


def fit_view(page) -> None:
    """The editor's "fit view" shortcut: the whole graph on screen."""
    close_on = page.viewport_size
    page.mouse.click(close_on["width"] // 2, close_on["height"] - 40)
    page.keyboard.press(".")
    page.wait_for_timeout(700)


def thumbnail(page, name: str) -> None:
    """The graph as the template browser shows it: the graph panel only (no sidebar, no minimap), at its aspect."""
    from PIL import Image

    page.evaluate("async () => { await app.extensionManager.setting.set('Comfy.Minimap.Visible', false); }")
    try:
        page.wait_for_timeout(300)
        area = page.evaluate("""() => { const r = (document.querySelector('.graph-canvas-panel')
                                                   ?? app.canvas.canvas).getBoundingClientRect();
                                        return {x: r.left, y: r.top, width: r.width, height: r.height}; }""")
        height = min(area["height"], area["width"] * THUMBNAIL_SIZE[1] / THUMBNAIL_SIZE[0])
        width = height * THUMBNAIL_SIZE[0] / THUMBNAIL_SIZE[1]
        clip = {"x": area["x"] + (area["width"] - width) / 2, "y": area["y"] + (area["height"] - height) / 2,
                "width": width, "height": height}
        shot = Image.open(io.BytesIO(page.screenshot(clip=clip))).convert("RGB")
        shot.resize(THUMBNAIL_SIZE, Image.LANCZOS).save(EXAMPLES / f"{name}.jpg", quality=85)
    finally:
        page.evaluate("async () => { await app.extensionManager.setting.set('Comfy.Minimap.Visible', true); }")


@pytest.mark.parametrize("api_path", API_FILES, ids=lambda p: p.stem)
def test_editor_loads_example_tidy_and_queues_its_api_twin(editor, server, inputs, api_path):
    page = editor
    ui = json.loads((EXAMPLES / api_path.name).read_text())
    unknown = page.evaluate("(types) => types.filter(t => !LiteGraph.registered_node_types[t])",
                            sorted({n["type"] for n in ui["nodes"]}))
    assert not unknown, f"node types the editor does not know: {unknown}"
    page.evaluate("async (wf) => { await app.loadGraphData(wf); }", ui)
    assert page.evaluate("() => app.graph._nodes.length") == len(ui["nodes"])
    page.wait_for_function(PREVIEWS_LOADED, timeout=60_000)
    fit_view(page)
    screenshot(page, f"example_{api_path.stem}")
    if os.environ.get("ANIMATEFLOW_THUMBNAILS") == "1" and page.mode == "vue":
        thumbnail(page, api_path.stem)
    assert page.evaluate(OVERLAPS) == [], f"nodes overlap as {api_path.stem} opens ({page.mode} nodes)"
    prompt = page.evaluate("async () => (await app.graphToPrompt()).output")
    expected = _defaults_filled(json.loads(api_path.read_text()), server.object_info())
    assert workflows.strip_meta(prompt) == expected


def test_load_video_uploads_and_previews(editor, server, inputs, tmp_path):
    """A user picks a file with the node's upload button: it lands in the input folder, the node selects it, and
    its preview plays inside the node."""
    page = editor
    source = server.server.base / "input" / "vid2vid_source.mp4"
    upload = tmp_path / f"upload_{page.mode}.mp4"
    upload.write_bytes(source.read_bytes())
    node = page.evaluate("""() => { const n = LiteGraph.createNode('AnimateFlow_LoadVideo'); n.pos = [200, 100];
                                     app.graph.add(n); return n.id; }""")
    with page.expect_file_chooser(timeout=30_000) as chooser:
        page.evaluate("""(id) => app.graph.getNodeById(id).widgets.find(w => w.type === 'button'
                             || w.name === 'upload').callback()""", node)
    chooser.value.set_files(str(upload))
    page.wait_for_function("([id, name]) => app.graph.getNodeById(id).widgets.find(w => w.name === 'video')"
                           ".value === name", arg=[node, upload.name], timeout=30_000)
    # The server may still be writing the file when the editor already shows its name.
    landed, deadline = server.server.base / "input" / upload.name, time.monotonic() + 30
    while landed.read_bytes() != upload.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert landed.read_bytes() == upload.read_bytes()
    size = page.wait_for_function(
        """(name) => { const v = [...document.querySelectorAll('video')].find(v => (v.src || '').includes(name));
                       return v && v.readyState >= 2 && [v.videoWidth, v.videoHeight]; }""",
        arg=upload.name, timeout=30_000).json_value()
    assert size == [96, 96]
    fit_view(page)
    preview = settled(page, """(name) => { const v = [...document.querySelectorAll('video')]
        .find(v => (v.src || '').includes(name)); const r = v.getBoundingClientRect();
        return {left: r.left, top: r.top, right: r.right, bottom: r.bottom}; }""", upload.name)
    assert inside(preview, settled(page, NODE_BOX, node)), "the preview is drawn inside Load Video"
    screenshot(page, "load_video_upload")


# One rendering is enough for the slow end-to-end run: Video Combine's preview in both is covered by
# test_browser_preview.py on a cheap graph. Vue nodes are the default for new installs.
@pytest.mark.parametrize("editor", ["vue"], indirect=True)
def test_txt2vid_example_queues_and_plays_in_the_preview(editor, inputs):
    page = editor
    page.evaluate("async (wf) => { await app.loadGraphData(wf); }",
                  json.loads((EXAMPLES / "txt2vid.json").read_text()))
    page.evaluate(SHRINK_TXT2VID)
    page.evaluate("async () => { await app.queuePrompt(0, 1); }")
    page.wait_for_selector(".animateflow-preview video", state="attached", timeout=600_000)
    state = page.wait_for_function(
        """() => { const v = document.querySelector('.animateflow-preview video');
                   return v && v.readyState >= 2 && !v.error && [v.videoWidth, v.videoHeight]; }""",
        timeout=60_000).json_value()
    assert state == [64, 64]
    screenshot(page, "example_txt2vid_rendered")
