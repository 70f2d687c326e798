"""Example workflows: each UI file matches its API twin, opens in the template browser, and its twin renders."""

from __future__ import annotations

import io
import json

import av
import pytest
from conftest import REPO_ROOT

from scripts import comfy_host, fixtures, workflows

EXAMPLES = REPO_ROOT / "example_workflows"
API_FILES = sorted((EXAMPLES / "api").glob("*.json"))
QUICK = {"size": 32, "frames": 24, "video_frames": 8, "steps": 1}
# Frames of the written videos where they do not follow the latent batch: Latent Init Blend's and Load Video's
# QUICK["video_frames"], the inpainting folder's 6 images, and the boomerang's 16 forward + 14 back (its turn and
# its return to the first frame dropped).
VIDEO_FRAMES = {"img2vid": 8, "vid2vid_controlnet": 8, "video_inpainting": 6, "boomerang_gif": 30}


def _defaults_filled(api: dict, object_info: dict) -> dict:
    """The twin as the editor would queue it: optional widget inputs the twin leaves out take their defaults."""
    filled = workflows.strip_meta(api)
    for node in filled.values():
        spec = object_info[node["class_type"]]
        for name, entry in spec["input"].get("optional", {}).items():
            options = entry[1] if len(entry) > 1 else {}
            if name not in node["inputs"] and workflows._is_widget(entry) and "default" in options:
                node["inputs"][name] = options["default"]
    return filled


def _shrink(api: dict) -> dict:
    """Tiny sizes and one step, so every example runs on the CPU within the CI budget; windows stay windows."""
    graph = workflows.strip_meta(api)
    for node in graph.values():
        inputs, kind = node["inputs"], node["class_type"]
        if kind == "EmptyLatentImage":
            inputs.update(width=QUICK["size"], height=QUICK["size"], batch_size=min(inputs["batch_size"], QUICK["frames"]))
        elif kind == "AnimateFlow_PromptTravel":
            inputs["frames"] = min(inputs["frames"], QUICK["frames"])
        elif kind == "AnimateFlow_LatentInitBlend":
            inputs["frames"] = min(inputs["frames"], QUICK["video_frames"])
        elif kind == "AnimateFlow_LoadVideo":
            inputs.update(frame_load_cap=QUICK["video_frames"], custom_width=QUICK["size"], custom_height=QUICK["size"])
        elif kind == "ImageScale":
            inputs.update(width=QUICK["size"], height=QUICK["size"])
        elif kind in ("KSampler", "KSamplerAdvanced"):
            inputs["steps"] = QUICK["steps"]
        elif kind == "AnimateFlow_FreeInit":
            inputs["iterations"] = min(inputs["iterations"], 2)
    return graph


def _motion_modules_named(api: dict) -> list[str]:
    """The fixture formats of the motion module files an example loads (scripts/fixtures.py names them)."""
    by_file = {name: fmt for fmt, name in fixtures.MOTION_MODULE_FILES.items()}
    return [by_file[node["inputs"]["model_name"]] for node in api.values()
            if node["class_type"] == "AnimateFlow_LoadMotionModule"]


def test_every_example_has_both_formats():
    ui_files = sorted(p.name for p in EXAMPLES.glob("*.json"))
    assert ui_files and ui_files == sorted(p.name for p in API_FILES)


@pytest.mark.parametrize("api_path", API_FILES, ids=lambda p: p.stem)
def test_ui_file_queues_as_its_api_twin(api_path, server):
    info = server.object_info()
    ui = json.loads((EXAMPLES / api_path.name).read_text())
    api = json.loads(api_path.read_text())
    assert {n["type"] for n in ui["nodes"]} <= set(info), "a node type the server does not know"
    assert workflows.ui_to_api(ui, info) == _defaults_filled(api, info)


def test_template_browser_lists_examples(server):
    templates = server.request("/workflow_templates")
    listed = set(templates.get(comfy_host.PACK_DIR_NAME, []))
    assert {p.stem for p in API_FILES} <= listed
    assert "api" not in listed


@pytest.mark.parametrize("api_path", API_FILES, ids=lambda p: p.stem)
def test_example_renders_on_random_models(api_path, server, sd15_file, motion_module_file, motion_lora_file,
                                          example_inputs):
    api = json.loads(api_path.read_text())
    for fmt in _motion_modules_named(api) or ["v2"]:
        motion_module_file(fmt)
    graph = _shrink(api)
    entry = server.run(graph, timeout=900)
    videos = [item for out in entry["outputs"].values() for item in out.get("animateflow", [])
              if item["role"] != "poster"]
    assert videos, f"{api_path.stem} wrote no video"
    expected = VIDEO_FRAMES.get(api_path.stem) or next(
        node["inputs"]["batch_size"] for node in graph.values() if node["class_type"] == "EmptyLatentImage")
    for item in videos:
        with av.open(io.BytesIO(server.view(item["filename"], item["subfolder"]))) as container:
            frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
        assert len(frames) == expected, f"{item['filename']}: {len(frames)} frames, expected {expected}"
        assert any((frame != frames[0]).any() for frame in frames[1:]), f"{item['filename']} is a still"


def test_vid2vid_keeps_the_source_frame_count_fps_and_sound(server, sd15_file, motion_module_file, example_inputs):
    """The original's "Number of frames 0": the video's own frames drive the latent batch, its fps the output."""
    import io

    import av

    motion_module_file("v2")
    graph = _shrink(json.loads((EXAMPLES / "api" / "vid2vid_controlnet.json").read_text()))
    graph["16"]["inputs"]["frame_load_cap"] = 0
    graph["9"]["inputs"].update(filename_prefix="examples_test/vid2vid", save_gif=False)
    entry = server.run(graph, timeout=900)
    mp4 = next(item for out in entry["outputs"].values() for items in out.values() if isinstance(items, list)
               for item in items if isinstance(item, dict) and item.get("filename", "").endswith(".mp4"))
    with av.open(io.BytesIO(server.view(mp4["filename"], mp4["subfolder"]))) as container:
        video = container.streams.video[0]
        assert sum(1 for _ in container.decode(video=0)) == 12, "every frame of the 12-frame source"
        assert float(video.average_rate) == 8.0
    with av.open(io.BytesIO(server.view(mp4["filename"], mp4["subfolder"]))) as container:
        assert container.streams.audio, "the source's sound is muxed in"
