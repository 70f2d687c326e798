"""Core ComfyUI's VIDEO type in and out: core Load Video → our Video Combine, our Load Video → core Save Video and
Get Video Components, through the prompt API on every host (0.33.0 and 0.3.75 differ: Save Video's format is a
dynamic combo on 0.33.0, Get Video Components has 5 outputs there and 3 on 0.3.75)."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import av
import imageio_ffmpeg
import pytest
import torch
from conftest import BASE_DIR, call_node, pack_module

from scripts import inprocess

core_video = pack_module("media.core_video")
INPUT = BASE_DIR / "input"
OUTPUT = BASE_DIR / "output"
LOAD_OPTIONS = dict(frame_load_cap=0, skip_first_frames=0, select_every_nth=1, force_rate=0.0, custom_width=0,
                    custom_height=0)
COMBINE = dict(fps=8.0, save_gif=False, save_mp4=True)


def clip(path: Path, *extra: str, frames: int = 6, fps: int = 12, tone: bool = True) -> Path:
    """An H.264 MP4 (testsrc, 32x24) with a sine tone as long as the video; `extra` adds ffmpeg output options."""
    seconds = f"{frames / fps}"
    args = [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc=size=32x24:rate={fps}:duration={seconds}"]
    if tone:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}", "-c:a", "aac"]
    subprocess.run([*args, "-pix_fmt", "yuv420p", *extra, "-frames:v", str(frames), str(path)], check=True,
                   timeout=60)
    return path


def decoded(path: Path) -> tuple[int, float, bool]:
    """Frame count, frame rate and whether an audio track is there, as PyAV reads the file."""
    with av.open(str(path), metadata_errors="replace") as container:
        stream = container.streams.video[0]
        count = sum(1 for _ in container.decode(stream))
        return count, float(stream.average_rate), bool(container.streams.audio)


@pytest.fixture
def names():
    """Unique file names in the input folder, removed afterwards, and an output subfolder."""
    token = uuid.uuid4().hex[:8]
    yield token
    for path in INPUT.glob(f"cv_{token}*"):
        path.unlink()
    shutil.rmtree(OUTPUT / f"cv_{token}", ignore_errors=True)


def combined_file(entry: dict, node: str) -> Path:
    first = entry["outputs"][node]["animateflow"][0]
    return OUTPUT / first["subfolder"] / first["filename"]


def test_prompt_api_core_load_video_into_video_combine(server, names):
    """Core Load Video's VIDEO → our Video Combine: the video's own 12 fps (not the fps widget's 8), its frames and
    its audio are written; a file whose tags are not UTF-8 (core's reader fails on it) is read by ours."""
    plain = clip(INPUT / f"cv_{names}.mp4").name
    latin = clip(INPUT / f"cv_{names}_latin1.mp4", "-metadata", "title=caf\udce9", tone=False).name
    graph = {
        "1": {"class_type": "LoadVideo", "inputs": {"file": plain}},
        "2": {"class_type": "AnimateFlow_VideoCombine",
              "inputs": {"input_video": ["1", 0], "filename_prefix": f"cv_{names}/core", **COMBINE}},
        "3": {"class_type": "LoadVideo", "inputs": {"file": latin}},
        "4": {"class_type": "AnimateFlow_VideoCombine",
              "inputs": {"input_video": ["3", 0], "filename_prefix": f"cv_{names}/latin", **COMBINE}},
    }
    entry = server.run(graph)
    info = entry["outputs"]["2"]["animateflow_info"]
    assert info[0] == "6 frames, 32x24, 12 fps" and "from a VIDEO: 12 fps, sRGB, 8-bit" in info, info
    assert decoded(combined_file(entry, "2")) == (6, 12.0, True)
    assert entry["outputs"]["4"]["animateflow_info"][0] == "6 frames, 32x24, 12 fps"
    assert decoded(combined_file(entry, "4")) == (6, 12.0, False)


def test_prompt_api_load_video_into_core_save_video_and_components(server, names):
    """Our Load Video's VIDEO (frames 2..5 of 6, with audio) → core Save Video writes those 4 frames at 12 fps
    with sound; → core Get Video Components gives back the 4 frames and 12 fps (fed to Video Combine, whose info
    reports them)."""
    name = clip(INPUT / f"cv_{names}.mp4").name
    info = server.object_info()
    save_inputs = {"video": ["1", 5], "filename_prefix": f"cv_{names}/saved"}
    if info["SaveVideo"]["input"]["required"]["format"][0] == "COMFY_DYNAMICCOMBO_V3":
        save_inputs.update({"format": "mp4", "format.codec": "h264"})  # 0.33.0
    else:
        save_inputs.update({"format": "mp4", "codec": "h264"})  # 0.3.75
    graph = {
        "1": {"class_type": "AnimateFlow_LoadVideo",
              "inputs": {"video": name, **{**LOAD_OPTIONS, "skip_first_frames": 2}}},
        "2": {"class_type": "SaveVideo", "inputs": save_inputs},
        "3": {"class_type": "GetVideoComponents", "inputs": {"video": ["1", 5]}},
        "4": {"class_type": "AnimateFlow_VideoCombine",
              "inputs": {"images": ["3", 0], "fps": ["3", 2], "filename_prefix": f"cv_{names}/parts",
                         "save_gif": True, "save_mp4": False}},
    }
    entry = server.run(graph)
    saved = entry["outputs"]["2"]["images"][0]
    assert decoded(OUTPUT / saved["subfolder"] / saved["filename"]) == (4, 12.0, True)
    assert entry["outputs"]["4"]["animateflow_info"][0] == "4 frames, 32x24, 12 fps"


def test_video_combine_takes_exactly_one_source_and_refuses_hdr(names):
    images = torch.rand(3, 24, 32, 3)
    video = core_video.video_from_frames(images, 8.0, None)
    with pytest.raises(ValueError, match="Video Combine: both images and video are connected; connect exactly one"):
        call_node("AnimateFlow_VideoCombine", images=images, input_video=video, filename_prefix=f"cv_{names}/x",
                  **COMBINE)
    with pytest.raises(ValueError, match="Video Combine: nothing to save: .*or a video"):
        call_node("AnimateFlow_VideoCombine", filename_prefix=f"cv_{names}/x", **COMBINE)
    if not core_video.host_video_features().color_space:
        return  # 0.3.75: a VIDEO has no colour space there
    hdr = clip(INPUT / f"cv_{names}_hlg.mp4", "-vf", "setparams=color_trc=arib-std-b67:color_primaries=bt2020:"
               "colorspace=bt2020nc", tone=False)
    from comfy_api.latest import InputImpl

    with pytest.raises(ValueError, match="Video Combine: video is HDR .*core Save Video"):
        call_node("AnimateFlow_VideoCombine", input_video=InputImpl.VideoFromFile(str(hdr)),
                  filename_prefix=f"cv_{names}/x", **COMBINE)
    assert not (OUTPUT / f"cv_{names}").exists()


def test_load_video_keeps_a_ten_bit_source_ten_bit(names):
    """Bit depth in core's words: a 10-bit source gives a 10-bit VIDEO where the host knows depths, and Video
    Combine given it says so, and how to keep it, when its bit_depth is 8."""
    path = clip(INPUT / f"cv_{names}_10.mp4", "-pix_fmt", "yuv420p10le", tone=False)
    video = call_node("AnimateFlow_LoadVideoPath", video_path=path.name, **LOAD_OPTIONS)[5]
    assert video.get_components().images.shape == (6, 24, 32, 3)
    info = inprocess.run_v3_node("AnimateFlow_VideoCombine", None, input_video=video,
                                 filename_prefix=f"cv_{names}/d", **COMBINE).ui["animateflow_info"]
    if not core_video.host_video_features().bit_depth:
        assert "from a VIDEO: 12 fps, sRGB, 8-bit" in info  # 0.3.75: a VIDEO has no bit depth there
        return
    assert video.get_bit_depth() == 10
    assert "from a VIDEO: 12 fps, sRGB, 10-bit" in info
    assert "the video is 10-bit but bit_depth is 8: set bit_depth to 10 to keep it" in info
