"""The editor preview in a real browser: headless Chromium loads a workflow, queues it, and the result plays.

Needs Debian's chromium (`apt-get install -y chromium`) and Playwright's Python package (no browser
download: it drives /usr/bin/chromium). The screenshot goes to tests/artifacts/ (ignored by git). Every page
counts uncaught errors and console errors (an extension registered twice, a failed extension import) as failures.
"""

from __future__ import annotations

import json
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
        return f"/extensions/{comfy_host.PACK_DIR_NAME}/" in url
    text = f"{message.text} {url}".lower()
    return "animateflow" in text or comfy_host.PACK_DIR_NAME.lower() in text


def open_editor(browser, server, width: int = 1280, height: int = 900):
    """A page with the editor loaded and our node types registered; `page.errors` collects uncaught errors and the
    console errors about the pack from then on."""
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


def test_preview_plays_on_the_node_after_queueing(server):
    require_browser()
    node_info = server.object_info()[NODE]
    workflow = combine_workflow(node_info, "vc_browser/clip")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = open_editor(browser, server)
            page.evaluate("async (wf) => { await app.loadGraphData(wf); }", workflow)
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
            close_dialogs(page)
            page.wait_for_timeout(500)
            page.screenshot(path=str(ARTIFACTS / "video_combine_preview.png"))

            # GIF only: the preview is an image, loaded from /view.
            page.evaluate("async (wf) => { await app.loadGraphData(wf); await app.queuePrompt(0, 1); }",
                          combine_workflow(node_info, "vc_browser/gif", save_mp4=False))
            size = page.wait_for_function(
                """() => { const i = document.querySelector('.animateflow-preview img');
                           return i && i.complete && i.naturalWidth > 0 && i.src.includes('.gif') &&
                                  [i.naturalWidth, i.naturalHeight]; }""", timeout=60_000).json_value()
            assert size == [64, 64]
            close_dialogs(page)
            page.screenshot(path=str(ARTIFACTS / "video_combine_preview_gif.png"))
            assert not page.errors, json.dumps(page.errors, indent=1)
        finally:
            browser.close()
