"""The live animated preview in a real editor: while a motion module samples, the panel shows all frames of the
current step, updates as steps go by, and loops through the frames."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from test_browser_preview import ARTIFACTS, CHROMIUM, LAUNCH_ARGS, close_dialogs, open_editor, require_browser

from scripts import workflows

pytestmark = [pytest.mark.host, pytest.mark.browser]

FRAMES, STEPS = 8, 4
PANEL = ".animateflow-live-preview"


def _graph(sd15_file: str, module_file: str) -> dict:
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": sd15_file}},
        "2": {"class_type": "AnimateFlow_LoadMotionModule", "inputs": {"model_name": module_file}},
        "3": {"class_type": "AnimateFlow_ApplyMotionModule",
              "inputs": {"model": ["1", 0], "motion_module": ["2", 0], "motion_scale": 1.0, "beta_schedule": "auto"}},
        "4": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": "a boat on a lake"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": FRAMES}},
        "6": {"class_type": "KSampler", "inputs": {"model": ["3", 0], "seed": 3, "steps": STEPS, "cfg": 1.0,
                                                   "sampler_name": "euler", "scheduler": "normal",
                                                   "positive": ["4", 0], "negative": ["4", 0],
                                                   "latent_image": ["5", 0], "denoise": 1.0}},
        "7": {"class_type": "VAEDecode", "inputs": {"samples": ["6", 0], "vae": ["1", 2]}},
        "8": {"class_type": "PreviewImage", "inputs": {"images": ["7", 0]}},
    }


def test_live_preview_animates_during_a_run(server, sd15_file, motion_module_file):
    require_browser()
    from playwright.sync_api import sync_playwright

    ui = workflows.api_to_ui(_graph(sd15_file, motion_module_file("v3")), server.object_info())
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        executable = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=LAUNCH_ARGS)
        try:
            page = open_editor(browser, server)
            page.evaluate("async (wf) => { await app.loadGraphData(wf); await app.queuePrompt(0, 1); }", ui)

            page.wait_for_selector(f"{PANEL}[data-step]", state="visible", timeout=600_000)
            steps, frames, deadline = set(), set(), time.monotonic() + 600
            while time.monotonic() < deadline:
                state = page.evaluate(f"""() => {{ const p = document.querySelector('{PANEL}');
                    return {{step: +p.dataset.step, total: +p.dataset.total, frames: +p.dataset.frames,
                             frame: +p.dataset.frame, title: p.querySelector('span').textContent}}; }}""")
                steps.add(state["step"])
                frames.add(state["frame"])
                if state["step"] == STEPS and len(frames) > 2:
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
            close_dialogs(page)
            page.screenshot(path=str(ARTIFACTS / "live_preview.png"))
            errors = page.errors
        finally:
            browser.close()
    assert not errors, errors
