"""What Video Combine shows in the real editor (headless Chromium): the run's facts under the preview, the preview
back when a saved workflow is reopened (only while its file exists, and never in the prompt), and the fallback
to what the browser can play. Same set-up as test_browser_preview.py (Debian chromium, Playwright)."""

from __future__ import annotations

import json
import shutil

import pytest
from test_browser_preview import (ELEMENT_BOX, NODE, NODE_BOX, editor, editors, inside,  # noqa: F401 (fixtures)
                                  screenshot, settled, widget_values)

pytestmark = [pytest.mark.host, pytest.mark.browser]

NODE_ID = 2


def workflow(node_info: dict, prefix: str) -> dict:
    """EmptyImage (8 frames, 64x64) → Video Combine writing MP4, GIF and PNG frames, gifsicle on when present."""
    values = widget_values(node_info, {"fps": 8.0, "filename_prefix": prefix, "save_gif": True, "save_mp4": True,
                                       "save_png": True, "gifsicle_optimize": 1})
    return {
        "last_node_id": 2, "last_link_id": 1, "version": 0.4, "groups": [], "config": {}, "extra": {},
        "links": [[1, 1, 0, NODE_ID, 0, "IMAGE"]],
        "nodes": [
            {"id": 1, "type": "EmptyImage", "pos": [40, 120], "size": [300, 130], "flags": {}, "order": 0,
             "mode": 0, "inputs": [], "properties": {"Node name for S&R": "EmptyImage"},
             "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [1], "slot_index": 0}],
             "widgets_values": [64, 64, 8, 0x3080FF]},
            {"id": NODE_ID, "type": NODE, "pos": [380, 60], "size": [340, 760], "flags": {}, "order": 1, "mode": 0,
             "inputs": [{"name": "images", "type": "IMAGE", "link": 1}],
             "outputs": [{"name": "file_paths", "type": "STRING", "links": None},
                         {"name": "video", "type": "VIDEO", "links": None}],
             "properties": {"Node name for S&R": NODE}, "widgets_values": values},
        ],
    }


# The facts once their layout has settled (the same boxes for 300 ms): the editor places a new DOM widget on its
# next canvas draw, and until then the text wraps in an element that has no width yet.
INFO_STATE = """() => {
    const info = document.querySelector('.animateflow-preview .animateflow-info');
    const media = document.querySelector('.animateflow-preview video, .animateflow-preview img');
    if (!info || !media || !info.textContent) return false;
    const box = info.getBoundingClientRect(), mediaBox = media.getBoundingClientRect();
    const key = JSON.stringify([box, mediaBox, info.textContent]);
    const last = window.animateflowInfoLayout;
    if (!last || last.key !== key) { window.animateflowInfoLayout = {key, since: performance.now()}; return false; }
    if (performance.now() - last.since < 300) return false;
    return {lines: [...info.children].map((row) => row.textContent), visible: info.checkVisibility(),
            width: box.width, height: box.height, below: box.top >= mediaBox.bottom - 1};
}"""

MEDIA = """() => { const e = document.querySelector('.animateflow-preview video, .animateflow-preview img');
                   return e ? {tag: e.tagName, src: e.getAttribute('src') || ''} : null; }"""


def run_once(page, server, prefix: str) -> dict:
    page.evaluate("async (wf) => { await app.loadGraphData(wf); await app.queuePrompt(0, 1); }",
                  workflow(server.object_info()[NODE], prefix))
    return page.wait_for_function(INFO_STATE, timeout=120_000).json_value()


def test_info_text_is_drawn_and_the_preview_returns_on_reopen(editor, server):
    page = editor
    state = run_once(page, server, f"vc_state/{page.mode}")
    assert state["lines"][0] == "8 frames, 64x64, 8 fps"
    gifsicle = "gifsicle -O1 --lossy=0: " if shutil.which("gifsicle") else "gifsicle is not installed"
    assert any(line.startswith(gifsicle) for line in state["lines"][1:]), state["lines"]
    assert state["visible"] and state["width"] > 50 and state["height"] >= 2 * 14 and state["below"], state
    # On the node, and not cut off by it: every line of the info text is inside the node's box.
    assert inside(settled(page, ELEMENT_BOX, ".animateflow-preview .animateflow-info"),
                  settled(page, NODE_BOX, NODE_ID)), "the info text spills out of the node"
    screenshot(page, "video_combine_info")

    saved = page.evaluate("() => JSON.parse(JSON.stringify(app.graph.serialize()))")
    stored = next(n for n in saved["nodes"] if n["id"] == NODE_ID)["properties"]["animateflow_preview"]
    assert stored["info"] == state["lines"]
    mp4 = next(item for item in stored["items"] if item["format"] == "video/h264-mp4")
    assert mp4["subfolder"] == "vc_state" and mp4["type"] == "output"
    prompt = page.evaluate("async () => (await app.graphToPrompt()).output")
    assert "animateflow_preview" not in json.dumps(prompt) and mp4["filename"] not in json.dumps(prompt)

    # Reopen: a fresh graph, then the saved workflow; the preview and its facts come back from the files.
    page.evaluate("async () => { app.graph.clear(); }")
    assert page.evaluate(MEDIA) is None
    page.evaluate("async (wf) => { await app.loadGraphData(wf); }", saved)
    page.wait_for_function(f"() => {{ const v = document.querySelector('.animateflow-preview video');"
                           f" return v && v.getAttribute('src').includes('{mp4['filename']}') && v.readyState >= 1; }}",
                           timeout=60_000)
    assert page.wait_for_function(INFO_STATE, timeout=30_000).json_value()["lines"] == state["lines"]

    # The same workflow once its files are gone: no preview, and the stale reference is dropped.
    for item in next(n for n in saved["nodes"] if n["id"] == NODE_ID)["properties"]["animateflow_preview"]["items"]:
        item["filename"] = "gone_" + item["filename"]
    page.evaluate("async () => { app.graph.clear(); }")
    page.evaluate("async (wf) => { await app.loadGraphData(wf); }", saved)
    page.wait_for_function(f"() => !app.graph.getNodeById({NODE_ID}).properties.animateflow_preview",
                           timeout=30_000)
    assert page.evaluate(MEDIA) is None


def listeners(page, expression: str) -> list[dict]:
    """The event listeners on the object an expression gives (Chrome DevTools' getEventListeners)."""
    cdp = page.context.new_cdp_session(page)
    try:
        target = cdp.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True})["result"]
        return cdp.send("DOMDebugger.getEventListeners", {"objectId": target["objectId"]})["listeners"]
    finally:
        cdp.detach()


API = "import('/scripts/api.js').then((m) => m.api)"


def test_preview_falls_back_to_what_the_browser_can_play(editor, server):
    page = editor
    api_listeners = len(listeners(page, API))
    run_once(page, server, f"vc_fallback/{page.mode}")
    files = page.evaluate(f"() => app.graph.getNodeById({NODE_ID}).properties.animateflow_preview.items")
    gif = next(item for item in files if item["format"] == "image/gif")
    poster = {**gif, "filename": gif["filename"].replace("_.gif", "_00000.png"), "format": "image/png",
              "mime": "image/png", "role": "poster"}
    missing = {**gif, "filename": "missing.mp4", "format": "video/h264-mp4", "mime": 'video/mp4; codecs="avc1.42E01E"',
               "role": "video"}
    unplayable = {**gif, "filename": "clip.xyz", "format": "video/x-animateflow-unplayable",
                  "mime": "video/x-animateflow-unplayable", "role": "video"}

    def show(items: list[dict], expected: str) -> dict:
        page.evaluate(f"(items) => app.graph.getNodeById({NODE_ID}).onExecuted("
                      "{animateflow: items, animateflow_info: ['fallback']})", items)
        return page.wait_for_function(
            """(name) => { const e = document.querySelector('.animateflow-preview .animateflow-media > *');
                           return e && e.tagName === 'IMG' && e.getAttribute('src').includes(name) &&
                                  e.complete && e.naturalWidth > 0 && e.naturalWidth; }""",
            arg=expected, timeout=30_000).json_value()

    # A format the browser cannot play is skipped; a video that fails to load falls through to the GIF.
    assert show([unplayable, missing, poster, gif], gif["filename"]) == 64
    # Nothing else plays: the poster frame.
    assert show([missing, {**gif, "filename": "missing.gif"}, poster], poster["filename"]) == 64

    # Removing the node lets go of its preview: its element keeps no listener and no source, and no listener is
    # left behind on the api.
    page.evaluate("() => { window.animateflowProbe ="
                  " document.querySelector('.animateflow-preview .animateflow-media > *'); }")
    assert len(listeners(page, "window.animateflowProbe")) >= 2
    page.evaluate(f"() => app.graph.remove(app.graph.getNodeById({NODE_ID}))")
    assert listeners(page, "window.animateflowProbe") == []
    assert page.evaluate("() => window.animateflowProbe.getAttribute('src')") is None
    page.evaluate("() => { delete window.animateflowProbe; app.graph.clear(); }")
    assert len(listeners(page, API)) == api_listeners
