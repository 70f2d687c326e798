"""Video Combine through ComfyUI's HTTP prompt API: a real server, files fetched back through /view."""

from __future__ import annotations

import json

import av
import pytest
from PIL import Image

from scripts.comfy_host import PromptFailed, PromptRejected

pytestmark = pytest.mark.host

NODE = "AnimateFlow_VideoCombine"
WORKFLOW = {"workflow": {"nodes": [], "links": [], "note": "restored by the editor"}}


def graph(**combine_inputs) -> dict:
    inputs = {"images": ["1", 0], "fps": 8.0, "filename_prefix": "vc_api/clip", "save_gif": True, "save_mp4": True,
              "save_webm": True, **combine_inputs}
    source = {"width": 64, "height": 48, "batch_size": 6, "color": 0xFF8000}
    return {"1": {"class_type": "EmptyImage", "inputs": source},
            "2": {"class_type": NODE, "inputs": inputs}}


def test_prompt_api_writes_playable_files_with_the_workflow(server, tmp_path):
    info = server.object_info()[NODE]
    assert info["output_node"] is True and info["display_name"] == "Video Combine (AnimateFlow)"
    assert {"fps", "filename_prefix", "save_gif", "save_mp4"} <= set(info["input"]["required"])
    assert {"images", "latents", "vae"} <= set(info["input"]["optional"])  # images, or latents + vae

    prompt = graph(reverse=True, remove_head=True, remove_tail=True)
    entry = server.run(prompt, extra_pnginfo=WORKFLOW, timeout=120)
    previews = entry["outputs"]["2"]["animateflow"]
    assert [p["format"] for p in previews] == ["video/h264-mp4", "video/webm", "image/gif"]
    for item in previews:
        assert item["subfolder"] == "vc_api" and item["type"] == "output"
        local = tmp_path / item["filename"]
        local.write_bytes(server.view(item["filename"], item["subfolder"]))
        if item["format"] == "image/gif":
            with Image.open(local) as gif:
                assert (gif.n_frames, gif.size) == (1, (64, 48))  # identical frames merge into one
                assert gif.info["duration"] == 10 * 120 and gif.info["loop"] == 0
            continue
        with av.open(str(local)) as container:
            stream = container.streams.video[0]
            assert sum(1 for _ in container.decode(stream)) == 10  # 6 forward + 4 back
            assert (stream.codec_context.width, stream.codec_context.height) == (64, 48)
            assert float(stream.average_rate) == pytest.approx(8.0)
            tags = {k.lower(): v for k, v in container.metadata.items()}
        assert json.loads(tags["prompt"]) == prompt
        assert json.loads(tags["workflow"]) == WORKFLOW["workflow"]


def test_prompt_api_reports_bad_prefix_and_fps(server):
    with pytest.raises(PromptFailed) as failed:
        server.run(graph(filename_prefix="../outside"), timeout=60)
    assert "filename_prefix '../outside'" in json.dumps(failed.value.errors)
    with pytest.raises(PromptRejected):
        server.run(graph(fps=0.0), timeout=60)
