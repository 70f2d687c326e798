"""Videos as latents: Load Video's vae input encodes while reading, Video Combine's latents input decodes while
writing. Checked against ComfyUI's own VAE Encode / VAE Decode on the whole batch (the random SD1.5 VAE), with
chunks forced small so every boundary case (a partial last chunk, a repeated frame across two chunks, a
boomerang turning inside a chunk) is crossed; and through the prompt API on a real server."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import clip_helpers
from conftest import BASE_DIR, call_node, pack_module
from PIL import Image

import nodes
from comfy_execution.graph_utils import ExecutionBlocker

pytestmark = pytest.mark.host

video_reader = pack_module("media.video_reader")
latent_stream = pack_module("media.latent_stream")
INPUT = BASE_DIR / "input"
OUTPUT = BASE_DIR / "output"
COMBINE = "AnimateFlow_VideoCombine"
LOAD = "AnimateFlow_LoadVideoPath"
OPTIONS = {"frame_load_cap": 0, "skip_first_frames": 1, "select_every_nth": 1, "force_rate": 12.0,
           "custom_width": 40, "custom_height": 32}


def write_clip(path: Path, frames: int = 9, fps: int = 8, size: tuple[int, int] = (48, 40)) -> Path:
    """Frames that differ in place and colour, so a frame out of order or a wrong chunk shows."""
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    images = []
    for i in range(frames):
        img = np.stack([x * 5 % 256, y * 6 % 256, np.full_like(x, 30 * i % 256)], -1)
        img[(x - 6 - 4 * i) ** 2 + (y - height // 2) ** 2 < 36] = 250
        images.append(img)
    return clip_helpers.write_clip(path, images, fps, options={"crf": "10"})


@pytest.fixture
def clip():
    """A clip in the input folder (name relative to it), removed afterwards."""
    name = f"animateflow-latents-{uuid.uuid4().hex[:8]}.mp4"
    write_clip(INPUT / name)
    yield name
    (INPUT / name).unlink()


@pytest.fixture
def small_chunks(monkeypatch):
    """Three frames per VAE call, so a few frames cross every chunk boundary case."""
    monkeypatch.setattr(latent_stream.frames, "CHUNK_FRAMES", 3)


@pytest.fixture
def out_folder():
    """A fresh subfolder of the output folder, removed afterwards."""
    name = f"vl_{uuid.uuid4().hex[:8]}"
    yield name
    shutil.rmtree(OUTPUT / name, ignore_errors=True)


def run_combine(**inputs):
    defaults = {"fps": 8.0, "save_gif": False, "save_mp4": False}
    cls = nodes.NODE_CLASS_MAPPINGS[COMBINE].PREPARE_CLASS_CLONE({})
    return cls.EXECUTE_NORMALIZED(**{**defaults, **inputs})


def test_stream_chunks_are_read_video_in_pieces(tmp_path):
    """The chunked reader gives exactly read_video's frames (force_rate repeats included), in any chunk size."""
    path = write_clip(tmp_path / "clip.mp4", frames=9)
    options = video_reader.VideoOptions(0, 1, 1, 12.0, width=40, height=32)
    whole = video_reader.read_video(path, options)
    for size in (1, 3, 4, 100):
        stream = video_reader.open_stream(path, options)
        chunks = list(stream.chunks(size))
        assert all(c.shape[0] <= size for c in chunks)
        assert torch.equal(torch.cat(chunks), whole.images)
        assert (stream.frame_count, stream.decoded, stream.fps) == (whole.frame_count, whole.frame_count, whole.fps)
    assert stream.audio() is None


def test_load_video_latents_equal_vae_encode_of_the_frames(sd15, clip, small_chunks):
    vae = sd15[2]
    images, count, fps, audio, no_latents, _video, info = call_node(LOAD, video_path=clip, **OPTIONS)
    assert isinstance(no_latents, ExecutionBlocker) and "latents output needs a VAE" in no_latents.message
    assert count == 13  # 9 frames at 8 fps last 1.125 s: 14 slots at 12 fps, less the skipped first one
    reference = call_node("VAEEncode", pixels=images, vae=vae)[0]["samples"]

    no_images, count_l, fps_l, audio_l, latents, _no_video, info_l = call_node(LOAD, video_path=clip, vae=vae,
                                                                               **OPTIONS)
    assert isinstance(no_images, ExecutionBlocker) and "disconnect the vae" in no_images.message
    assert (count_l, fps_l, audio_l, info_l) == (count, fps, audio, info)
    assert latents["samples"].shape == (count, 4, 4, 5)
    torch.testing.assert_close(latents["samples"], reference, rtol=1e-4, atol=1e-4)


def read_pngs(files: str) -> np.ndarray:
    pngs = sorted(p for p in files.split("\n") if p.endswith(".png"))
    return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in pngs]).astype(int)


def test_video_combine_from_latents_writes_what_vae_decode_gives(sd15, small_chunks, out_folder):
    vae = sd15[2]
    gen = torch.Generator().manual_seed(3)
    latents = {"samples": torch.randn(7, 4, 5, 6, generator=gen)}
    images = call_node("VAEDecode", samples=latents, vae=vae)[0]
    boomerang = {"reverse": True, "remove_head": True, "remove_tail": True, "save_png": True}
    from_images = run_combine(images=images, filename_prefix=f"{out_folder}/images", **boomerang)
    from_latents = run_combine(latents=latents, vae=vae, filename_prefix=f"{out_folder}/latents", **boomerang)
    expected, got = read_pngs(from_images.args[0]), read_pngs(from_latents.args[0])
    assert got.shape == expected.shape == (12, 40, 48, 3)  # 7 forward + 5 back
    assert np.abs(got - expected).max() <= 1
    info = from_latents.ui["animateflow_info"]
    assert info[0] == "12 frames, 48x40, 8 fps"
    decodes = int(info[-1].split("(")[1].split()[0])
    assert info[-1].startswith("decoded from latents, 3 frames at a time")
    assert decodes <= 12  # one pass in boomerang order: the turn is served from the kept chunks


@pytest.mark.parametrize("inputs, message", [
    ({}, "connect images, or latents together with a vae"),
    ({"images": torch.zeros(2, 8, 8, 3), "latents": {"samples": torch.zeros(2, 4, 1, 1)}}, "both images and latents"),
    ({"latents": {"samples": torch.zeros(2, 4, 1, 1)}}, "latents needs a VAE"),
    ({"latents": {"samples": torch.zeros(2, 16, 1, 1)}, "vae": "sd15"}, "16 channels but the vae expects 4"),
    ({"latents": {"samples": torch.zeros(0, 4, 1, 1)}, "vae": "sd15"}, "empty batch"),
])
def test_bad_latent_inputs_give_clear_errors(sd15, inputs, message, out_folder):
    if inputs.get("vae") == "sd15":
        inputs = {**inputs, "vae": sd15[2]}
    with pytest.raises(ValueError, match=message) as err:
        run_combine(filename_prefix=f"{out_folder}/x", save_gif=True, **inputs)
    assert str(err.value).startswith("Video Combine: ")
    assert not (OUTPUT / out_folder).exists() or not any((OUTPUT / out_folder).iterdir())


def test_prompt_api_vid2vid_through_latents(server, clip, tmp_path):
    """Load Video (vae) → Video Combine (latents + vae) writes an MP4 and a GIF of the loaded frames; a node
    wired to Load Video's images output is blocked (ComfyUI's ExecutionBlocker), the rest of the prompt runs."""
    load = {"video": clip, **OPTIONS}
    graph = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5-pruned-emaonly.safetensors"}},
        "2": {"class_type": "AnimateFlow_LoadVideo", "inputs": {**load, "vae": ["1", 2]}},
        "3": {"class_type": COMBINE, "inputs": {"latents": ["2", 4], "vae": ["1", 2], "fps": ["2", 2],
                                               "filename_prefix": "vl_api/clip", "save_gif": True,
                                               "save_mp4": True}},
        "4": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
    }
    outputs = server.run(graph, timeout=300)["outputs"]
    assert "4" not in outputs
    combine = outputs["3"]
    assert combine["animateflow_info"][0] == "13 frames, 40x32, 12 fps"
    formats = {item["format"]: item for item in combine["animateflow"]}
    mp4 = tmp_path / "clip.mp4"
    mp4.write_bytes(server.view(formats["video/h264-mp4"]["filename"], "vl_api"))
    with av.open(str(mp4)) as container:
        stream = container.streams.video[0]
        assert sum(1 for _ in container.decode(stream)) == 13
        assert (stream.codec_context.width, stream.codec_context.height, float(stream.average_rate)) == (40, 32, 12)
    gif = tmp_path / "clip.gif"
    gif.write_bytes(server.view(formats["image/gif"]["filename"], "vl_api"))
    with Image.open(gif) as image:
        assert image.size == (40, 32) and image.n_frames > 1
