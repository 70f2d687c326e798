"""Video Combine through ComfyUI's HTTP prompt API: a real server, files fetched back through /view."""

from __future__ import annotations

import io
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
    assert {"images", "fps", "filename_prefix", "save_gif", "save_mp4"} <= set(info["input"]["required"])

    prompt = graph(reverse=True, remove_head=True, remove_tail=True)
    entry = server.run(prompt, extra_pnginfo=WORKFLOW, timeout=120)
    previews = entry["outputs"]["2"]["animateflow"]
    assert [p["format"] for p in previews] == ["video/h264-mp4", "video/webm", "image/gif", "image/png"]
    poster = previews.pop()
    assert poster["role"] == "poster" and poster["type"] == "temp"
    with Image.open(io.BytesIO(server.view(poster["filename"], poster["subfolder"], "temp"))) as image:
        assert image.size == (64, 48)
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


def test_prompt_api_extra_format_preview_only_serves_from_temp(server, tmp_path):
    """An AV1 MP4 and a WEBP as a preview: files in temp/, served by /view?type=temp, nothing in output/."""
    prompt = graph(filename_prefix="vc_api_preview/clip", save_webm=False, extra_format="av1-mp4",
                   preview_only=True)
    entry = server.run(prompt, timeout=180)
    items = entry["outputs"]["2"]["animateflow"]
    assert [(i["format"], i["role"]) for i in items] == [
        ("video/h264-mp4", "video"), ("video/av1-mp4", "video"), ("image/gif", "animation"), ("image/png", "poster")]
    assert {i["type"] for i in items} == {"temp"}
    av1 = items[1]
    assert av1["mime"] == 'video/mp4; codecs="av01.0.05M.08"'
    local = tmp_path / av1["filename"]
    local.write_bytes(server.view(av1["filename"], av1["subfolder"], "temp"))
    with av.open(str(local)) as container:
        stream = container.streams.video[0]
        assert sum(1 for _ in container.decode(stream)) == 6
        assert (stream.codec_context.width, stream.codec_context.height) == (64, 48)
        assert float(stream.average_rate) == pytest.approx(8.0)
    assert not (server.server.base / "output" / "vc_api_preview").exists()
