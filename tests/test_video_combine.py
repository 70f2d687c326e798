"""Video Combine in-process: every output decoded back (Pillow, PyAV) and checked against the input frames."""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from conftest import BASE_DIR, call_node, pack_module
from PIL import Image

from scripts import inprocess

import comfy.model_management
from comfy_api.latest import InputImpl, io
from comfy_extras.nodes_video import GetVideoComponents

pytestmark = pytest.mark.host

NODE = "AnimateFlow_VideoCombine"
OUTPUT = BASE_DIR / "output"
PROMPT = {"1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 48, "batch_size": 6, "color": 0}},
          "2": {"class_type": NODE, "inputs": {"images": ["1", 0], "fps": 8.0}}}
WORKFLOW = {"workflow": {"last_node_id": 2, "nodes": [{"id": 1, "type": "EmptyImage"}], "note": "a=b;c#d\\e\nf"}}


def grey_frames(count: int, height: int = 48, width: int = 64) -> torch.Tensor:
    """Solid frames whose level encodes their index, so order survives lossy codecs."""
    levels = torch.linspace(0.05, 0.95, count)
    return levels.view(count, 1, 1, 1).expand(count, height, width, 3).contiguous()


def colour_frames(count: int, height: int = 48, width: int = 64) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.rand(count, height, width, 3, generator=gen)


def run(hidden: dict | None = None, **inputs) -> io.NodeOutput:
    """Run the node like the executor, keeping the UI result that call_node drops."""
    defaults = {"fps": 8.0, "save_gif": True, "save_mp4": True}
    return inprocess.run_v3_node(NODE, hidden, **{**defaults, **inputs})


@pytest.fixture
def prefix(request) -> str:
    """A fresh subfolder of the output folder per test."""
    sub = f"vc_tests/{request.node.name.replace('[', '_').replace(']', '')}"
    shutil.rmtree(OUTPUT / sub, ignore_errors=True)
    yield f"{sub}/clip"
    shutil.rmtree(OUTPUT / sub, ignore_errors=True)


def files_in(prefix: str) -> list[str]:
    folder = OUTPUT / Path(prefix).parent
    return sorted(os.listdir(folder)) if folder.exists() else []


def decode_video(path: str) -> dict:
    with av.open(path) as container:
        stream = container.streams.video[0]
        means = [frame.to_ndarray(format="rgb24").astype(np.float64).mean() / 255 for frame in container.decode(stream)]
        return {"frames": len(means), "means": means, "width": stream.codec_context.width,
                "height": stream.codec_context.height, "fps": float(stream.average_rate),
                "codec": stream.codec_context.name, "pix_fmt": stream.codec_context.pix_fmt,
                "metadata": dict(container.metadata)}


def decode_gif(path: str) -> dict:
    with Image.open(path) as gif:
        durations, means = [], []
        for index in range(gif.n_frames):
            gif.seek(index)
            durations.append(gif.info["duration"])
            means.append(np.asarray(gif.convert("RGB"), dtype=np.float64).mean() / 255)
        return {"frames": gif.n_frames, "size": gif.size, "durations": durations, "loop": gif.info.get("loop"),
                "comment": gif.info.get("comment"), "means": means}


def audio_seconds(path: str) -> float:
    with av.open(path) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return samples / stream.codec_context.sample_rate


def test_every_format_decodes_back_with_count_size_fps(prefix):
    images = colour_frames(6)
    out = run(images=images, fps=8.0, filename_prefix=prefix, save_webm=True, save_png=True, save_txt=True)
    paths, video = out.args
    files = paths.split("\n")
    assert all(os.path.isfile(p) for p in files)
    by_ext = {}
    for p in files:
        by_ext.setdefault(Path(p).suffix, []).append(p)
    assert sorted(by_ext) == [".gif", ".mp4", ".png", ".txt", ".webm"]

    gif = decode_gif(by_ext[".gif"][0])
    assert gif["frames"] == 6 and gif["size"] == (64, 48) and gif["loop"] == 0
    assert all(abs(d - 1000 / 8) <= 10 for d in gif["durations"])

    for ext, codec in ((".mp4", "h264"), (".webm", "vp9")):
        clip = decode_video(by_ext[ext][0])
        assert (clip["frames"], clip["width"], clip["height"], clip["codec"]) == (6, 64, 48, codec)
        assert clip["fps"] == pytest.approx(8.0) and clip["pix_fmt"] == "yuv420p"

    pngs = sorted(by_ext[".png"])
    assert len(pngs) == 6
    expected = (images.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    for index, p in enumerate(pngs):
        assert np.array_equal(np.asarray(Image.open(p).convert("RGB")), expected[index])

    text = Path(by_ext[".txt"][0]).read_text()
    assert "frames: 6" in text and "fps: 8.0" in text and "64x48" in text

    assert isinstance(video, InputImpl.VideoFromFile)
    assert video.get_dimensions() == (64, 48)
    assert out.ui["animateflow"][0]["filename"].endswith(".mp4")
    previews = out.ui["animateflow"]
    assert [item["format"] for item in previews] == ["video/h264-mp4", "video/webm", "image/gif", "image/png"]
    assert [item["role"] for item in previews] == ["video", "video", "animation", "poster"]
    assert all(item["subfolder"] == str(Path(prefix).parent) for item in previews[:3])
    assert previews[3]["type"] == "temp" and previews[3]["subfolder"] == ""


def test_fractional_fps_and_gif_centiseconds(prefix):
    paths, _ = call_node(NODE, images=colour_frames(4), fps=12.5, filename_prefix=prefix, save_gif=True,
                         save_mp4=True)
    gif_path, mp4_path = paths.split("\n")
    assert decode_gif(gif_path)["durations"] == [80] * 4
    assert decode_video(mp4_path)["fps"] == pytest.approx(12.5)


@pytest.mark.parametrize("count", [1, 2])
def test_one_and_two_frame_batches_work(prefix, count):
    out = run(images=colour_frames(count), filename_prefix=prefix, save_webm=True, save_png=True)
    files = out.args[0].split("\n")
    assert decode_gif(files[0])["frames"] == count
    assert decode_video(files[1])["frames"] == count and decode_video(files[2])["frames"] == count
    assert len(files) == 3 + count


def test_gif_delay_never_below_what_browsers_honour(prefix):
    paths, _ = call_node(NODE, images=colour_frames(3), fps=120.0, filename_prefix=prefix, save_gif=True,
                         save_mp4=False)
    assert decode_gif(paths)["durations"] == [20, 20, 20]


@pytest.mark.parametrize("remove_head, remove_tail, order", [
    (False, False, [0, 1, 2, 3, 3, 2, 1, 0]),
    (True, False, [0, 1, 2, 3, 2, 1, 0]),
    (False, True, [0, 1, 2, 3, 3, 2, 1]),
    (True, True, [0, 1, 2, 3, 2, 1]),
])
def test_boomerang_order_matches_the_original_extension(prefix, remove_head, remove_tail, order):
    images = grey_frames(4)
    levels = images[:, 0, 0, 0].tolist()
    paths, video = call_node(NODE, images=images, fps=8.0, filename_prefix=prefix, save_gif=True, save_mp4=True,
                             save_webm=True, reverse=True, remove_head=remove_head, remove_tail=remove_tail)
    gif_path, mp4_path, webm_path = paths.split("\n")
    for path in (mp4_path, webm_path):
        clip = decode_video(path)
        assert clip["frames"] == len(order)
        assert clip["means"] == pytest.approx([levels[i] for i in order], abs=0.02)
    gif = decode_gif(gif_path)
    # Pillow merges consecutive identical frames into one of double length: same playback, fewer frames.
    merged = [i for k, i in enumerate(order) if k == 0 or order[k - 1] != i]
    assert gif["means"] == pytest.approx([levels[i] for i in merged], abs=0.02)
    assert sum(gif["durations"]) == len(order) * 120
    assert video.get_components().images.shape[0] == len(order)


def test_loop_count_is_stored_in_the_gif(prefix):
    paths, _ = call_node(NODE, images=colour_frames(3), fps=10.0, filename_prefix=prefix, save_gif=True,
                         save_mp4=False, loop_count=3)
    assert decode_gif(paths)["loop"] == 3


def test_workflow_and_prompt_round_trip_in_every_format(prefix):
    hidden = {io.Hidden.prompt: PROMPT, io.Hidden.extra_pnginfo: WORKFLOW}
    out = run(hidden, images=colour_frames(3), filename_prefix=prefix, save_webm=True, save_png=True, save_txt=True)
    files = {Path(p).suffix: p for p in out.args[0].split("\n")}

    mp4 = decode_video(files[".mp4"])["metadata"]
    assert json.loads(mp4["prompt"]) == PROMPT and json.loads(mp4["workflow"]) == WORKFLOW["workflow"]
    webm = decode_video(files[".webm"])["metadata"]
    # Matroska tag names are upper case; ComfyUI's editor looks for PROMPT / WORKFLOW there.
    assert json.loads(webm["PROMPT"]) == PROMPT and json.loads(webm["WORKFLOW"]) == WORKFLOW["workflow"]
    with Image.open(files[".png"]) as png:
        assert json.loads(png.text["prompt"]) == PROMPT and json.loads(png.text["workflow"]) == WORKFLOW["workflow"]
    comment = json.loads(decode_gif(files[".gif"])["comment"])
    assert comment == {"prompt": PROMPT, **WORKFLOW}
    assert '"class_type": "EmptyImage"' in Path(files[".txt"]).read_text()


@pytest.mark.parametrize("bad", ["../escape", "a/../../escape", "/tmp/escape", "C:\\escape", "C:escape",
                                 "\\\\server\\share\\x", "..\\escape", "", "folder/"])
def test_prefix_that_leaves_the_output_folder_is_refused(bad):
    errors = pack_module("media.output_paths")
    with pytest.raises(errors.UnsafePrefixError, match="filename_prefix"):
        call_node(NODE, images=colour_frames(2), fps=8.0, filename_prefix=bad, save_gif=True, save_mp4=True)
    for folder in (OUTPUT, OUTPUT.parent, Path("/tmp")):
        assert not list(folder.glob("escape_*")), folder


def test_subfolder_prefix_and_counter(prefix):
    first = call_node(NODE, images=colour_frames(2), fps=8.0, filename_prefix=prefix, save_gif=True, save_mp4=False)
    second = call_node(NODE, images=colour_frames(2), fps=8.0, filename_prefix=prefix, save_gif=True, save_mp4=False)
    assert first[0].endswith("clip_00001_.gif") and second[0].endswith("clip_00002_.gif")
    assert Path(first[0]).parent == OUTPUT / Path(prefix).parent


@pytest.mark.parametrize("inputs, message", [
    ({"images": torch.zeros(0, 8, 8, 3)}, "empty batch"),
    ({"fps": 0.0}, "fps is 0.0"),
    ({"fps": -4.0}, "fps is -4.0"),
    ({"fps": math.nan}, "fps is nan"),
    ({"save_gif": False, "save_mp4": False}, "turn on at least one format"),
])
def test_bad_inputs_give_clear_errors(prefix, inputs, message):
    args = {"images": colour_frames(2), "filename_prefix": prefix, **inputs}
    with pytest.raises(ValueError, match=message) as err:
        run(**args)
    assert "Video Combine" in str(err.value)
    assert files_in(prefix) == []


def test_odd_size_is_padded_for_mp4_and_said_so(prefix, caplog):
    with caplog.at_level(logging.WARNING):
        out = run(images=colour_frames(3, height=33, width=47), filename_prefix=prefix, save_webm=True)
    files = {Path(p).suffix: p for p in out.args[0].split("\n")}
    mp4 = decode_video(files[".mp4"])
    assert (mp4["width"], mp4["height"], mp4["frames"]) == (48, 34, 3)
    webm = decode_video(files[".webm"])
    assert (webm["width"], webm["height"]) == (47, 33)
    assert decode_gif(files[".gif"])["size"] == (47, 33)
    assert any("47x33 is odd" in r.getMessage() for r in caplog.records)
    assert any("padded from 47x33 to 48x34" in note for note in out.ui["animateflow_info"])


def test_ffmpeg_error_surfaces_its_message_and_leaves_no_files(prefix):
    ffmpeg_writer = pack_module("media.ffmpeg_writer")
    # A 20000x2 frame is a valid IMAGE and GIF, but x264 refuses that size: ffmpeg's own words must surface.
    refusal = r"ffmpeg could not write the H.264 MP4: .*invalid width x height"
    with pytest.raises(ffmpeg_writer.FFmpegError, match=refusal) as err:
        run(images=colour_frames(2, height=2, width=20000), filename_prefix=prefix)
    assert "Video Combine" in str(err.value)
    assert files_in(prefix) == [], "the GIF written before the failed MP4 must be removed, and no .partial left"


def test_interrupt_mid_encode_leaves_no_partial_file(prefix):
    writer = pack_module("media.video_writer")
    calls = []

    def interrupt_on_third_chunk():
        calls.append(1)
        if len(calls) == 3:
            raise comfy.model_management.InterruptProcessingException()

    options = writer.CombineOptions(fps=8.0, save_gif=False, save_mp4=True, save_webm=False)
    with pytest.raises(comfy.model_management.InterruptProcessingException):
        writer.combine(colour_frames(64), prefix, options, check_interrupt=interrupt_on_third_chunk,
                       node="Video Combine")
    assert len(calls) == 3
    assert files_in(prefix) == []


def test_interrupt_through_comfyui_stops_the_node(prefix):
    comfy.model_management.interrupt_current_processing(True)
    try:
        with pytest.raises(comfy.model_management.InterruptProcessingException):
            run(images=colour_frames(4), filename_prefix=prefix, save_png=True)
    finally:
        comfy.model_management.interrupt_current_processing(False)
    assert files_in(prefix) == []


@pytest.mark.parametrize("audio_seconds_in", [0.4, 2.5])
def test_audio_is_muxed_and_fitted_to_the_video_length(prefix, audio_seconds_in):
    rate = 44100
    t = torch.arange(int(rate * audio_seconds_in)) / rate
    wave = torch.stack([torch.sin(2 * math.pi * 440 * t), torch.sin(2 * math.pi * 660 * t)]).unsqueeze(0) * 0.5
    out = run(images=colour_frames(8), fps=8.0, filename_prefix=prefix, save_gif=False, save_webm=True,
              audio={"waveform": wave, "sample_rate": rate})
    for path in out.args[0].split("\n"):
        assert audio_seconds(path) == pytest.approx(1.0, abs=0.03), path
        assert decode_video(path)["frames"] == 8


def test_gifsicle_pass_reports_sizes(prefix):
    if shutil.which("gifsicle") is None:
        pytest.skip("gifsicle is not installed (apt-get install -y gifsicle)")
    out = run(images=colour_frames(6), filename_prefix=prefix, save_mp4=False, gifsicle_optimize=3,
              gifsicle_lossy=80)
    gif = decode_gif(out.args[0])
    assert gif["frames"] == 6 and gif["size"] == (64, 48)
    note = next(n for n in out.ui["animateflow_info"] if n.startswith("gifsicle"))
    before, after = (int(x) for x in note.split(": ")[1].removesuffix(" bytes").split(" -> "))
    assert after == os.path.getsize(out.args[0]) and after < before


def test_missing_gifsicle_is_reported_not_raised(prefix, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    out = run(images=colour_frames(3), filename_prefix=prefix, save_mp4=False, gifsicle_optimize=2)
    assert decode_gif(out.args[0])["frames"] == 3
    assert any("gifsicle is not installed" in n for n in out.ui["animateflow_info"])


def test_video_output_feeds_comfyui_video_nodes(prefix):
    images = grey_frames(5)
    _, video = call_node(NODE, images=images, fps=8.0, filename_prefix=prefix, save_gif=False, save_mp4=True)
    # comfy_extras are not loaded in-process: run ComfyUI's own node class directly. Its outputs are read by their
    # labels: 0.3.75 has images, audio, fps; newer hosts add bit_depth and color_space, which must read our file too.
    labels = [output.display_name for output in GetVideoComponents.GET_SCHEMA().outputs]
    outputs = dict(zip(labels, inprocess.run_v3_node(GetVideoComponents, video=video).args))
    frames, fps = outputs["images"], outputs["fps"]
    assert frames.shape == (5, 48, 64, 3) and float(fps) == pytest.approx(8.0)
    assert outputs.get("bit_depth", 8) == 8 and outputs.get("color_space", "sRGB") == "sRGB"
    assert frames[:, :, :, 0].mean(dim=(1, 2)).tolist() == pytest.approx(images[:, 0, 0, 0].tolist(), abs=0.02)

    _, from_frames = call_node(NODE, images=images, fps=8.0, filename_prefix=prefix, save_gif=True, save_mp4=False,
                               reverse=True, remove_head=True)
    components = from_frames.get_components()
    assert components.images.shape[0] == 9 and float(components.frame_rate) == pytest.approx(8.0)
    assert torch.equal(components.images[5], images[3])
