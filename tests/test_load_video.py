"""Load Video: synthetic MP4/WEBM/GIF/MOV files (with and without a sine-tone track) decoded back with the right
counts, fps, frames and audio; loading options; streaming memory; the path policy; a prompt through the server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
import clip_helpers
from conftest import BASE_DIR, call_node, pack_module
from memory_probe import PROBE

video_reader = pack_module("media.video_reader")
paths = pack_module("media.paths")
INPUT = BASE_DIR / "input"


def grey(i: int) -> int:
    """Frame i's grey level: frames are told apart by brightness after lossy coding."""
    return (i * 8) % 256


def make_video(path: Path, frames: int = 12, fps: int = 8, size=(48, 32), audio_hz: float | None = None) -> Path:
    """Write a video whose frame i is a flat grey(i), optionally with a stereo sine tone as long as the video."""
    width, height = size
    audio = clip_helpers.tone(frames / fps, audio_hz) if audio_hz else None
    clip_helpers.write_clip(path, [np.full((height, width, 3), grey(i), np.uint8) for i in range(frames)], fps, audio)
    return path


def levels(images: torch.Tensor) -> list[int]:
    return images.mean(dim=(1, 2, 3)).mul(255).round().int().tolist()


@pytest.fixture
def input_dir():
    """A folder of our own inside the test base's input folder, removed afterwards."""
    folder = INPUT / f"animateflow-test-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    yield folder
    shutil.rmtree(folder)


@pytest.mark.parametrize("suffix", [".mp4", ".webm", ".mov", ".gif"])
def test_formats_decode_with_counts_and_fps(tmp_path, suffix):
    video = video_reader.read_video(make_video(tmp_path / f"v{suffix}", frames=12, fps=8))
    assert video.frame_count == 12 and video.images.shape == (12, 32, 48, 3)
    assert video.images.dtype == torch.float32 and 0 <= video.images.min() and video.images.max() <= 1
    if suffix == ".gif":
        assert abs(1 / video.fps - 1 / 8) <= 0.01, "GIF delays are whole hundredths of a second"
        got = levels(video.images)
        assert got == sorted(got) and got[-1] - got[0] > 60
    else:
        assert video.fps == pytest.approx(8)
        assert max(abs(a - b) for a, b in zip(levels(video.images), map(grey, range(12)))) <= 4
    assert video.audio is None


@pytest.mark.parametrize("suffix", [".mp4", ".webm"])
def test_audio_track_is_returned_as_comfy_audio(tmp_path, suffix):
    video = video_reader.read_video(make_video(tmp_path / f"a{suffix}", frames=16, fps=8, audio_hz=440))
    audio = video.audio
    assert audio["sample_rate"] == 48000
    waveform = audio["waveform"]
    assert waveform.dim() == 3 and waveform.shape[:2] == (1, 2) and waveform.dtype == torch.float32
    assert abs(waveform.shape[2] - 2 * 48000) <= 2048, "audio spans the 2 s of video"
    spectrum = torch.fft.rfft(waveform[0, 0, 4800:-4800]).abs()
    peak_hz = spectrum.argmax().item() * 48000 / (waveform.shape[2] - 9600)
    assert peak_hz == pytest.approx(440, abs=5)


def test_options_skip_nth_cap_and_audio_cut(tmp_path):
    path = make_video(tmp_path / "o.mp4", frames=30, fps=10, audio_hz=300)
    options = video_reader.VideoOptions(frame_load_cap=5, skip_first_frames=3, select_every_nth=2)
    video = video_reader.read_video(path, options)
    assert video.frame_count == 5
    assert max(abs(a - b) for a, b in zip(levels(video.images), [grey(i) for i in (3, 5, 7, 9, 11)])) <= 4
    assert video.fps == pytest.approx(5)
    assert video.audio["waveform"].shape[2] == pytest.approx(48000 * 5 * 2 / 10, abs=2)


def test_force_rate_repeats_and_drops_frames(tmp_path):
    path = make_video(tmp_path / "r.mp4", frames=8, fps=8)
    up = video_reader.read_video(path, video_reader.VideoOptions(force_rate=16))
    assert up.frame_count == 16 and up.fps == pytest.approx(16)
    assert max(abs(a - grey(i // 2)) for i, a in enumerate(levels(up.images))) <= 4
    down = video_reader.read_video(path, video_reader.VideoOptions(force_rate=4))
    assert down.frame_count == 4 and down.fps == pytest.approx(4)
    assert max(abs(a - grey(2 * i)) for i, a in enumerate(levels(down.images))) <= 4


def test_custom_size_keeps_aspect_when_one_side_given(tmp_path):
    path = make_video(tmp_path / "s.webm", frames=3, size=(64, 32))
    assert video_reader.read_video(path, video_reader.VideoOptions(width=32)).images.shape == (3, 16, 32, 3)
    assert video_reader.read_video(path, video_reader.VideoOptions(height=8)).images.shape == (3, 8, 16, 3)
    both = video_reader.read_video(path, video_reader.VideoOptions(width=24, height=40))
    assert both.images.shape == (3, 40, 24, 3)


def test_missing_empty_corrupt_files_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.mp4"):
        video_reader.read_video(tmp_path / "nothere.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(ValueError, match="empty.mp4"):
        video_reader.read_video(tmp_path / "empty.mp4")
    (tmp_path / "junk.webm").write_bytes(os.urandom(4096))
    with pytest.raises(ValueError, match="junk.webm"):
        video_reader.read_video(tmp_path / "junk.webm")
    path = make_video(tmp_path / "short.mp4", frames=4)
    with pytest.raises(ValueError, match="skip_first_frames is 10"):
        video_reader.read_video(path, video_reader.VideoOptions(skip_first_frames=10))


MEMORY_CHILD = PROBE + textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from media import video_reader

    video_reader.read_video(sys.argv[2], video_reader.VideoOptions(frame_load_cap=4))
    base = status("VmRSS")
    reset_peak()
    video = video_reader.read_video(sys.argv[2])
    print(json.dumps({"base": base, "peak": status("VmHWM"), "bytes": video.images.nbytes,
                      "frames": video.frame_count}))
    """
)


def test_long_video_streams_into_the_output_tensor(tmp_path):
    """2,000 frames at 64x64: the loader's peak RSS above its baseline stays close to the output tensor."""
    path = make_video(tmp_path / "long.mp4", frames=2000, fps=24, size=(64, 64))
    script = tmp_path / "child.py"
    script.write_text(MEMORY_CHILD)
    pack_root = str(Path(video_reader.__file__).parent.parent)
    result = subprocess.run([sys.executable, str(script), pack_root, str(path)],
                            capture_output=True, text=True, check=True, timeout=300)
    facts = json.loads(result.stdout.strip().splitlines()[-1])
    assert facts["frames"] == 2000 and facts["bytes"] == 2000 * 64 * 64 * 3 * 4
    grown = facts["peak"] - facts["base"]
    assert 0.9 * facts["bytes"] < grown < 1.1 * facts["bytes"] + 8 * 2**20, facts


def test_path_policy(tmp_path, input_dir, monkeypatch):
    monkeypatch.delenv(paths.ALLOW_ENV, raising=False)
    inside = make_video(input_dir / "in.mp4", frames=2)
    relative = f"{input_dir.name}/in.mp4"
    assert paths.resolve_input_path(relative, "t") == inside.resolve()
    assert paths.resolve_input_path(str(inside), "t") == inside.resolve()

    outside = make_video(tmp_path / "out.mp4", frames=2)
    with pytest.raises(paths.PathNotAllowedError, match=f"Load Video.*outside.*{paths.ALLOW_ENV}"):
        paths.resolve_input_path(str(outside), "Load Video (Path): video_path")
    escape = f"{input_dir.name}/../../{os.path.relpath(outside, INPUT.parent)}"
    with pytest.raises(paths.PathNotAllowedError):
        paths.resolve_input_path(escape, "t")
    (input_dir / "link.mp4").symlink_to(outside)
    with pytest.raises(paths.PathNotAllowedError):
        paths.resolve_input_path(f"{input_dir.name}/link.mp4", "t")
    (input_dir / "dirlink").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(paths.PathNotAllowedError):
        paths.resolve_input_path(f"{input_dir.name}/dirlink/out.mp4", "t")
    with pytest.raises(paths.PathNotAllowedError, match="outside"):
        paths.resolve_input_path(str(tmp_path / "missing.mp4"), "t")
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        paths.resolve_input_path(f"{input_dir.name}/missing.mp4", "t")

    monkeypatch.setenv(paths.ALLOW_ENV, os.pathsep.join(["/nonexistent-root", str(tmp_path)]))
    assert paths.resolve_input_path(str(outside), "t") == outside.resolve()
    assert paths.resolve_input_path(f"{input_dir.name}/link.mp4", "t") == outside.resolve()


def test_nodes_load_from_input_folder_and_refuse_outside(tmp_path, input_dir, monkeypatch):
    monkeypatch.delenv(paths.ALLOW_ENV, raising=False)
    make_video(input_dir / "clip.webm", frames=6, fps=12, audio_hz=500)
    options = dict(frame_load_cap=0, skip_first_frames=1, select_every_nth=1, force_rate=0.0, custom_width=0,
                   custom_height=0)
    images, count, fps, audio, _latents, _video, info = call_node("AnimateFlow_LoadVideo",
                                                                  video=f"{input_dir.name}/clip.webm", **options)
    assert images.shape == (5, 32, 48, 3) and count == 5 and fps == pytest.approx(12)
    assert info.loaded_frame_count == 5 and info.source_frame_count == 6
    assert audio["sample_rate"] == 48000 and audio["waveform"].shape[:2] == (1, 2)
    outside = make_video(tmp_path / "x.mp4", frames=2)
    with pytest.raises(PermissionError, match="Load Video \\(Path\\): video_path"):
        call_node("AnimateFlow_LoadVideoPath", video_path=str(outside), **options)
    with pytest.raises(FileNotFoundError, match="Load Video.*gone.mp4"):
        call_node("AnimateFlow_LoadVideoPath", video_path=f"{input_dir.name}/gone.mp4", **options)
    (input_dir / "bad.mp4").write_bytes(b"not a video")
    with pytest.raises(ValueError, match="Load Video \\(Path\\): .*bad.mp4"):
        call_node("AnimateFlow_LoadVideoPath", video_path=f"{input_dir.name}/bad.mp4", **options)


def test_prompt_api_load_video_feeds_core_nodes(server):
    """Load Video → ImageScale → PreviewImage, and frame_count → EmptyImage's batch size: both previews
    hold as many images as frames were loaded (cap 5 of 7)."""
    name = f"animateflow-api-{uuid.uuid4().hex[:8]}.mp4"
    make_video(INPUT / name, frames=7, fps=8, size=(32, 32))
    try:
        assert name in server.object_info()["AnimateFlow_LoadVideo"]["input"]["required"]["video"][1]["options"]
        graph = {
            "1": {"class_type": "AnimateFlow_LoadVideo", "inputs": {
                "video": name, "frame_load_cap": 5, "skip_first_frames": 0, "select_every_nth": 1,
                "force_rate": 0.0, "custom_width": 0, "custom_height": 0}},
            "2": {"class_type": "ImageScale", "inputs": {
                "image": ["1", 0], "upscale_method": "nearest-exact", "width": 16, "height": 16, "crop": "disabled"}},
            "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
            "4": {"class_type": "EmptyImage", "inputs": {
                "width": 8, "height": 8, "batch_size": ["1", 1], "color": 0}},
            "5": {"class_type": "PreviewImage", "inputs": {"images": ["4", 0]}},
        }
        outputs = server.run(graph)["outputs"]
        assert len(outputs["3"]["images"]) == 5
        assert len(outputs["5"]["images"]) == 5
    finally:
        (INPUT / name).unlink()


def test_video_info_gives_the_source_and_the_loaded_facts(input_dir):
    """VideoHelperSuite's video_info, fact for fact: the file (12 frames at 8 fps, 48x32: 1.5 s) and what was
    loaded from it (force_rate 16 → 24 frames, skip 2, every 3rd → 8 frames at 16/3 fps, resized to 24 wide)."""
    make_video(input_dir / "facts.mp4", frames=12, fps=8)
    loaded = call_node("AnimateFlow_LoadVideo", video=f"{input_dir.name}/facts.mp4", frame_load_cap=0,
                       skip_first_frames=2, select_every_nth=3, force_rate=16.0, custom_width=24, custom_height=0)
    facts = call_node("AnimateFlow_VideoInfo", video_info=loaded[6])
    assert facts == pytest.approx((8.0, 12, 1.5, 48, 32, 16 / 3, 8, 1.5, 24, 16))
    assert isinstance(facts[1], int) and isinstance(facts[6], int) and loaded[1] == facts[6] and loaded[2] == facts[5]
    with pytest.raises(ValueError, match="Video Info: video_info must come from this pack's Load Video"):
        call_node("AnimateFlow_VideoInfo", video_info={"source_fps": 8.0})
