"""The editor preview in a real browser: headless Chromium loads a workflow, queues it, and the result plays.

Needs Debian's chromium (`apt-get install -y chromium`) and Playwright's Python package (no browser
download: it drives /usr/bin/chromium). Screenshots go to tests/artifacts/ (ignored by git). Every page
counts uncaught errors and console errors (an extension registered twice, a failed extension import) as failures.

The editor draws nodes in one of two ways, chosen by its `Comfy.VueNodes.Enabled` setting: on the LiteGraph
canvas ("classic"), or as Vue components over it ("vue", "Nodes 2.0", the default for new installs from frontend
1.3x). Browser tests take the `editor` fixture, which runs each test in both: one browser per test module
(Playwright's sync API holds an event loop, which must not outlive the module: in-process host tests run
their own), and one editor page per mode, opened the first time a test asks for it and reused by the module's
later tests. A frontend without Vue nodes skips the "vue" runs.
"""

from __future__ import annotations

import json
import re
import shutil
import urllib.request
from pathlib import Path

import pytest

from scripts import comfy_host

pytestmark = [pytest.mark.host, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
WEB_DIR = Path(__file__).resolve().parent.parent / "web"
NODE = "AnimateFlow_VideoCombine"
# The editor fetches release notes and model links from the internet; the only host it may reach here is ours.
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--no-first-run", "--disable-sync", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}

try:
    from playwright.sync_api import sync_playwright
except ImportError:
    sync_playwright = None


def require_browser() -> None:
    if sync_playwright is None:
        pytest.skip("playwright is not installed (pip install playwright==1.65.2)")
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")


def launch(pw):
    executable = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    return pw.chromium.launch(executable_path=executable, headless=True, args=LAUNCH_ARGS)


def ours(message) -> bool:
    """A console error about the pack: the editor logs a failed import or a duplicate registration of an extension
    there instead of throwing, naming the extension or its URL. The host's own noise (404s for user files it
    probes, its jobs API, the unreachable internet) is not ours."""
    url = message.location.get("url", "")
    if message.text.startswith("Failed to load resource"):
        # The node info panel asks for a translated help page (docs/<node id>/<language>.md) before the page
        # itself (docs/<node id>.md): that miss is the editor probing, not a broken file of ours.
        probe = re.search(rf"/extensions/{re.escape(comfy_host.PACK_DIR_NAME)}/docs/[^/?]+/[^/?]+\.md", url)
        return f"/extensions/{comfy_host.PACK_DIR_NAME}/" in url and not probe
    text = f"{message.text} {url}".lower()
    return "animateflow" in text or comfy_host.PACK_DIR_NAME.lower() in text


def open_editor(browser, server, width: int = 1280, height: int = 900, vue_nodes: bool | None = None):
    """A page with the editor loaded and our node types registered; `page.errors` collects uncaught errors and the
    console errors about the pack from then on. `vue_nodes` sets the editor's node rendering first (a user
    setting, stored by the server) where given."""
    if vue_nodes is not None:
        server.request("/settings/Comfy.VueNodes.Enabled", vue_nodes)
    page = browser.new_page(viewport={"width": width, "height": height})
    page.errors = []
    page.on("pageerror", lambda err: page.errors.append(f"pageerror: {err}"))
    page.on("console", lambda msg: msg.type == "error" and ours(msg)
            and page.errors.append(f"console: {msg.text} ({msg.location.get('url', '')})"))
    skip_first_visit_templates(server)
    page.goto(server.url, wait_until="domcontentloaded", timeout=120_000)
    page.wait_for_function("() => window.app && window.app.graph && window.LiteGraph"
                           f" && LiteGraph.registered_node_types['{NODE}']", timeout=120_000)
    page.wait_for_timeout(1000)
    close_dialogs(page)
    return page


MODES = ("classic", "vue")
# Vue nodes became the editor's default for new installs in the 1.5x frontends; in older ones (1.32 on ComfyUI
# 0.3.75) they were an experiment with other sizes and shortcuts, which the pack does not target.
VUE_NODES_FROM = (1, 58)
VUE_NODES_ON = "() => !!app.extensionManager?.setting?.get?.('Comfy.VueNodes.Enabled')"


class Editors:
    """One browser, and an editor page per rendering mode opened on first use (see the module docstring)."""

    def __init__(self, server, width: int, height: int):
        self.server, self.size, self.pages = server, (width, height), {}

    def __enter__(self) -> Editors:
        require_browser()
        self.playwright = sync_playwright().start()
        self.browser = launch(self.playwright)
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.browser.close()
        finally:
            self.playwright.stop()

    def page(self, mode: str):
        if mode == "vue" and frontend_version() < VUE_NODES_FROM:
            pytest.skip(f"Vue nodes are tested on frontend {VUE_NODES_FROM} on, not {frontend_version()}")
        if mode not in self.pages:
            page = open_editor(self.browser, self.server, *self.size, vue_nodes=mode == "vue")
            if mode == "vue" and not page.evaluate(VUE_NODES_ON):
                page.close()
                self.pages[mode] = None
            else:
                self.pages[mode] = page
        if self.pages[mode] is None:
            pytest.skip("this editor has no Vue node rendering (Comfy.VueNodes.Enabled)")
        return self.pages[mode]


def frontend_version() -> tuple[int, ...]:
    from importlib import metadata

    try:
        return tuple(int(part) for part in metadata.version("comfyui-frontend-package").split(".")[:2])
    except metadata.PackageNotFoundError:
        return (0,)


def editors_fixture(width: int = 1280, height: int = 900):
    """A module's `editors` fixture: its test modules' browser and pages, at this viewport size."""

    @pytest.fixture(scope="module")
    def editors(server):
        with Editors(server, width, height) as made:
            yield made

    return editors


editors = editors_fixture()


@pytest.fixture(params=MODES)
def editor(request, editors):
    """The editor in one rendering mode, an empty graph, no errors so far; fails the test on errors about the pack
    during it."""
    page = editors.page(request.param)
    page.mode = request.param
    close_dialogs(page)
    page.evaluate("() => app.graph.clear()")
    page.errors.clear()
    yield page
    assert not page.errors, json.dumps(page.errors, indent=1)


# A node's box on screen (title bar included) in either mode: the Vue component's element, or the LiteGraph
# node's bounds mapped through the canvas' offset and zoom.
NODE_BOX = """(id) => {
    const element = document.querySelector(`.lg-node[data-node-id="${id}"]`);
    if (element && app.extensionManager?.setting?.get?.('Comfy.VueNodes.Enabled')) {
        const r = element.getBoundingClientRect();
        return {left: r.left, top: r.top, right: r.right, bottom: r.bottom};
    }
    const b = app.graph.getNodeById(id).getBounding(), ds = app.canvas.ds;
    const c = app.canvas.canvas.getBoundingClientRect();
    const left = (b[0] + ds.offset[0]) * ds.scale + c.left, top = (b[1] + ds.offset[1]) * ds.scale + c.top;
    return {left, top, right: left + b[2] * ds.scale, bottom: top + b[3] * ds.scale};
}"""
ELEMENT_BOX = """(selector) => { const e = document.querySelector(selector); if (!e) return null;
    const r = e.getBoundingClientRect(); return {left: r.left, top: r.top, right: r.right, bottom: r.bottom}; }"""


def settled(page, expression: str, arg=None, quiet_ms: int = 300, timeout_ms: int = 10_000):
    """An expression's value once it stays the same for `quiet_ms`: the editor places DOM widgets on its next
    draws, so a box read straight after a change can still be on its way."""
    last, waited = page.evaluate(expression, arg), 0
    while waited < timeout_ms:
        page.wait_for_timeout(quiet_ms)
        waited += quiet_ms
        value = page.evaluate(expression, arg)
        if value == last:
            return value
        last = value
    return last


def inside(inner: dict, outer: dict, slack: float = 2.0) -> bool:
    return (inner["left"] >= outer["left"] - slack and inner["top"] >= outer["top"] - slack
            and inner["right"] <= outer["right"] + slack and inner["bottom"] <= outer["bottom"] + slack)


def screenshot(page, name: str) -> Path:
    """A screenshot per rendering mode: tests/artifacts/<name>_<mode>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    close_dialogs(page)
    path = ARTIFACTS / f"{name}_{page.mode}.png"
    page.screenshot(path=str(path))
    return path


def widget_values(node_info: dict, values: dict) -> list:
    """widgets_values in the order the editor builds widgets: every non-link input, defaults unless given."""
    ordered = []
    for group in ("required", "optional"):
        for name in node_info.get("input_order", {}).get(group, node_info["input"].get(group, {})):
            spec = node_info["input"][group][name]
            kind = spec[0] if isinstance(spec[0], str) else "COMBO"
            if isinstance(spec[0], list) or kind in WIDGET_TYPES:
                ordered.append(values.get(name, (spec[1] if len(spec) > 1 else {}).get("default")))
    return ordered


def skip_first_visit_templates(server) -> None:
    """A new user's first visit opens the template browser over the canvas; mark the tutorial as done instead."""
    server.request("/settings/Comfy.TutorialCompleted", True)


def close_dialogs(page) -> None:
    """A new user's first visit opens the template browser over the canvas; Escape closes it."""
    for _ in range(10):
        if not page.locator(".p-dialog-mask").count():
            return
        page.keyboard.press("Escape")
        page.wait_for_timeout(300)


def combine_workflow(node_info: dict, prefix: str, save_mp4: bool = True) -> dict:
    """UI-format workflow: EmptyImage (8 frames, 64x64) → Video Combine writing a GIF and maybe an MP4."""
    values = widget_values(node_info, {"fps": 8.0, "filename_prefix": prefix, "save_gif": True,
                                       "save_mp4": save_mp4})
    return {
        "last_node_id": 2, "last_link_id": 1, "version": 0.4, "groups": [], "config": {}, "extra": {},
        "links": [[1, 1, 0, 2, 0, "IMAGE"]],
        "nodes": [
            {"id": 1, "type": "EmptyImage", "pos": [40, 120], "size": [300, 130], "flags": {}, "order": 0,
             "mode": 0, "inputs": [], "properties": {"Node name for S&R": "EmptyImage"},
             "outputs": [{"name": "IMAGE", "type": "IMAGE", "links": [1], "slot_index": 0}],
             "widgets_values": [64, 64, 8, 0x3080FF]},
            {"id": 2, "type": NODE, "pos": [380, 60], "size": [340, 760], "flags": {}, "order": 1, "mode": 0,
             "inputs": [{"name": "images", "type": "IMAGE", "link": 1}],
             "outputs": [{"name": "file_paths", "type": "STRING", "links": None},
                         {"name": "video", "type": "VIDEO", "links": None}],
             "properties": {"Node name for S&R": NODE}, "widgets_values": values},
        ],
    }


def test_extension_files_are_served_once_under_the_pack_folder(server):
    """One registration of web/: served from both pyproject's `web` and WEB_DIRECTORY, a pack folder named other
    than the project (a git clone) loaded every script twice and the editor refused the second registration."""
    listed = server.request("/extensions")
    ours = sorted(url for url in listed if url.rsplit("/", 1)[-1] in {p.name for p in WEB_DIR.glob("*.js")}
                  and url.startswith("/extensions/"))
    expected = sorted(f"/extensions/{comfy_host.PACK_DIR_NAME}/{p.name}" for p in WEB_DIR.glob("*.js"))
    assert ours == expected
    for url in expected:
        with urllib.request.urlopen(server.url + url) as resp:
            assert resp.status == 200


def test_preview_plays_on_the_node_after_queueing(editor, server):
    node_info = server.object_info()[NODE]
    page = editor
    page.evaluate("async (wf) => { await app.loadGraphData(wf); }",
                  combine_workflow(node_info, f"vc_browser/{page.mode}"))
    page.evaluate("async () => { await app.queuePrompt(0, 1); }")

    video = page.wait_for_selector(".animateflow-preview video", state="attached", timeout=120_000)
    src = video.get_attribute("src")
    assert "/view?" in src and ".mp4" in src and "subfolder=vc_browser" in src
    state = page.wait_for_function(
        """() => { const v = document.querySelector('.animateflow-preview video');
                   return v && v.readyState >= 2 && !v.error &&
                          {w: v.videoWidth, h: v.videoHeight, d: v.duration,
                           playable: v.canPlayType('video/mp4')}; }""",
        timeout=60_000).json_value()
    assert (state["w"], state["h"]) == (64, 64)
    assert state["d"] == pytest.approx(1.0, abs=0.05) and state["playable"] != ""
    # It looks right: the video is drawn on its node, at a useful size, not squashed to nothing.
    node, media = settled(page, NODE_BOX, 2), settled(page, ELEMENT_BOX, ".animateflow-preview video")
    assert inside(media, node), (media, node)
    assert media["bottom"] - media["top"] > 100 and media["right"] - media["left"] > 100, media
    screenshot(page, "video_combine_preview")

    # GIF only: the preview is an image, loaded from /view.
    page.evaluate("async (wf) => { await app.loadGraphData(wf); await app.queuePrompt(0, 1); }",
                  combine_workflow(node_info, f"vc_browser/gif_{page.mode}", save_mp4=False))
    size = page.wait_for_function(
        """() => { const i = document.querySelector('.animateflow-preview img');
                   return i && i.complete && i.naturalWidth > 0 && i.src.includes('.gif') &&
                          [i.naturalWidth, i.naturalHeight]; }""", timeout=60_000).json_value()
    assert size == [64, 64]
    assert inside(settled(page, ELEMENT_BOX, ".animateflow-preview img"), settled(page, NODE_BOX, 2))
    screenshot(page, "video_combine_preview_gif")


def test_docs_panel_shows_our_help_page(editor, server):
    """The editor's node info panel shows the pack's page (web/docs/<node id>.md), not only the description it
    falls back to when a pack has none."""
    page = editor
    page.evaluate("async (wf) => { await app.loadGraphData(wf); }",
                  combine_workflow(server.object_info()[NODE], "vc_docs/clip"))
    page.evaluate("() => { app.canvas.deselectAll?.(); app.canvas.selectNode(app.graph.getNodeById(2)); }")
    # Older editors (1.32) draw the workflow tabs' overlay over the selection toolbox: click the button itself.
    page.locator('[data-testid="info-button"]').first.dispatch_event("click", timeout=10_000)
    headings = page.wait_for_function(
        f"""() => {{ const e = document.querySelector('.node-help-content');
                    return e && e.textContent.includes('Node id {NODE}') &&
                           [...e.querySelectorAll('h1, h2')].map((h) => h.textContent.trim()); }}""",
        timeout=30_000).json_value()
    assert [h for h in headings if h in ("Inputs", "Outputs", "Example")] == ["Inputs", "Outputs", "Example"], headings
    screenshot(page, "docs_panel")
