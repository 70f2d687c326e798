"""Files given to Load Video / Load Image Sequence are untrusted: tags in any encoding load, and whatever is wrong
with a file ends in our error naming the node and the file, never a bare library exception, in-process and
through the server (which keeps serving).

The non-UTF-8 files are first shown to fail in plain PyAV (strict tag decoding), so loading them tests the fix.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import uuid
from pathlib import Path

import av
import imageio_ffmpeg
import numpy as np
import pytest
from conftest import BASE_DIR, call_node, pack_module
from PIL import Image

from scripts.comfy_host import PromptFailed

read_errors = pack_module("media.read_errors")
paths = pack_module("media.paths")
INPUT = BASE_DIR / "input"
OPTIONS = dict(frame_load_cap=0, skip_first_frames=0, select_every_nth=1, force_rate=0.0, custom_width=0,
               custom_height=0)
LATIN_1 = b"caf\xe9"


def latin1_gif(path: Path, frames: int = 3) -> Path:
    """An animated GIF with a Latin-1 comment, as old tools (and Pillow's test image hopper.gif) have."""
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (16, 24, 3), np.uint8)) for _ in range(frames)]
    images[0].save(path, save_all=True, append_images=images[1:], comment=LATIN_1, duration=100, loop=0)
    return path


def latin1_mp4(path: Path) -> Path:
    """An H.264 MP4 of 4 frames at 8 fps whose title and comment tags hold bytes that are not UTF-8."""
    subprocess.run([os.fsencode(imageio_ffmpeg.get_ffmpeg_exe()), b"-loglevel", b"error", b"-y", b"-f", b"lavfi",
                    b"-i", b"testsrc=size=32x24:rate=8:duration=0.5", b"-pix_fmt", b"yuv420p",
                    b"-metadata", b"title=" + LATIN_1, b"-metadata", b"comment=\xff\xfe tag", os.fsencode(path)],
                   check=True, timeout=60)
    return path


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A folder outside the input folder that the server operator allows (the in-process host reads the env)."""
    monkeypatch.setenv(paths.ALLOW_ENV, str(tmp_path))
    return tmp_path


def test_non_utf8_tags_load(folder):
    files = ((latin1_gif(folder / "hopper-like.gif"), 3, 10.0), (latin1_mp4(folder / "latin1.mp4"), 4, 8.0))
    for path, frames, rate in files:
        with pytest.raises(UnicodeDecodeError):
            av.open(str(path)).close()  # plain PyAV: the file is the failing kind
        images, count, fps, _, _, video, _ = call_node("AnimateFlow_LoadVideoPath",
                                                       video_path=str(path), **OPTIONS)
        assert count == frames and images.shape[0] == frames and fps == pytest.approx(rate)
        assert video.get_components().images.shape == images.shape


def mutations(seed: int, sources: list[bytes], count: int):
    """Truncated, byte-flipped and pure-garbage versions of real files."""
    rng = random.Random(seed)
    for _ in range(count):
        data = bytearray(rng.choice(sources))
        kind = rng.randrange(3)
        if kind == 0:
            data = data[:rng.randrange(len(data))]
        elif kind == 1:
            for _ in range(rng.randrange(1, 64)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        else:
            data = bytearray(rng.randbytes(rng.randrange(0, 4096)))
        yield bytes(data)


def test_broken_videos_and_images_always_give_our_error(folder):
    """Every mutated file either loads or fails with MediaReadError naming the node and the file."""
    videos = [latin1_gif(folder / "a.gif").read_bytes(), latin1_mp4(folder / "b.mp4").read_bytes()]
    outcomes = {"loaded": 0, "refused": 0}
    for index, data in enumerate(mutations(1, videos, 60)):
        name = f"m{index}.{('mp4', 'gif', 'webm')[index % 3]}"
        (folder / name).write_bytes(data)
        try:
            call_node("AnimateFlow_LoadVideoPath", video_path=str(folder / name), **OPTIONS)
            outcomes["loaded"] += 1
        except read_errors.MediaReadError as err:
            assert str(err).startswith("Load Video (Path): ") and name in str(err), err
            outcomes["refused"] += 1
    assert outcomes["refused"] >= 20, outcomes

    frames = folder / "frames"
    frames.mkdir()
    Image.new("RGB", (8, 8), "red").save(frames / "f1.png")
    png = (frames / "f1.png").read_bytes()
    for index, data in enumerate(mutations(2, [png], 25)):
        (frames / "f2.png").write_bytes(data)
        try:
            call_node("AnimateFlow_LoadImageSequence", folder=str(frames))
        except read_errors.MediaReadError as err:
            assert str(err).startswith("Load Image Sequence: folder: ") and "f2.png" in str(err), (index, err)


def test_prompt_api_non_utf8_and_broken_files(server):
    """Through the server: both non-UTF-8 files load; a broken file fails with our error type and message; the
    same server then runs the next prompt."""
    folder = INPUT / f"animateflow-untrusted-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    try:
        gif, mp4 = latin1_gif(folder / "hopper-like.gif"), latin1_mp4(folder / "latin1.mp4")
        (folder / "broken.mp4").write_bytes(mp4.read_bytes()[:700])

        def load(name: str) -> dict:
            return {"1": {"class_type": "AnimateFlow_LoadVideoPath",
                          "inputs": {"video_path": f"{folder.name}/{name}", **OPTIONS}},
                    "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}}

        assert len(server.run(load(gif.name))["outputs"]["2"]["images"]) == 3
        assert len(server.run(load(mp4.name))["outputs"]["2"]["images"]) == 4
        with pytest.raises(PromptFailed) as failed:
            server.run(load("broken.mp4"))
        error = failed.value.errors[0]
        assert error["exception_type"].endswith("MediaReadError"), error
        message = error["exception_message"]
        assert message.startswith("Load Video (Path): ") and "broken.mp4" in message, message
        shutil.copy(gif, folder / "again.gif")
        assert len(server.run(load("again.gif"))["outputs"]["2"]["images"]) == 3
    finally:
        shutil.rmtree(folder)
