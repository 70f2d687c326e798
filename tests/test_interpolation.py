"""Interpolate Frames: counts, originals kept, exact blends, motion that moves objects, errors, memory, and a
Load Video → Interpolate Frames → Video Combine prompt through the server with the source's audio kept."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import av
import pytest
import torch
import clip_helpers
from conftest import BASE_DIR, call_node, pack_module
from memory_probe import PROBE
from PIL import Image

interpolation = pack_module("media.interpolation")

NODE = "AnimateFlow_InterpolateFrames"
COMBINE = "AnimateFlow_VideoCombine"
REPO_ROOT = Path(__file__).resolve().parent.parent
SQUARE, STEP, SIZE = 12, 8, 64


def moving_square(count: int, step: int = STEP, size: int = SIZE, left: int = 6) -> torch.Tensor:
    """A bright SQUARE×SQUARE square on black, `step` px further right each frame."""
    images = torch.zeros(count, size, size, 3)
    top = (size - SQUARE) // 2
    for i in range(count):
        x = left + i * step
        images[i, top:top + SQUARE, x:x + SQUARE] = 1.0
    return images


def square_fit(frame: torch.Tensor) -> tuple[float, int]:
    """(x centroid, area) of the pixels brighter than 3/4: one solid square, not two ghosts of one."""
    mask = frame.mean(-1) > 0.75
    xs = torch.arange(frame.shape[1], dtype=torch.float64)
    area = int(mask.sum())
    return (float((mask.sum(0) * xs).sum()) / area if area else float("nan")), area


def run_node(images, multiplier=2, method="motion", fps=8.0, closed_loop=False):
    return call_node(NODE, images=images, multiplier=multiplier, method=method, fps=fps, closed_loop=closed_loop)


@pytest.mark.parametrize("method", ["blend", "motion"])
@pytest.mark.parametrize("closed_loop", [False, True])
@pytest.mark.parametrize("multiplier", [2, 3])
def test_counts_and_originals_unchanged_at_their_positions(method, closed_loop, multiplier):
    images = torch.rand(5, 32, 48, 3, generator=torch.Generator().manual_seed(multiplier))
    out, fps = run_node(images, multiplier, method, fps=8.0, closed_loop=closed_loop)
    expected = 5 * multiplier if closed_loop else 4 * multiplier + 1
    assert out.shape == (expected, 32, 48, 3) and out.dtype == images.dtype
    for k in range(5):
        assert torch.equal(out[k * multiplier], images[k]), f"frame {k} changed"
    if closed_loop:
        # Ends on an in-between of the last and first frames, so a looping player wraps without a repeat.
        assert not torch.equal(out[-1], images[-1]) and not torch.equal(out[-1], images[0])
    else:
        assert torch.equal(out[-1], images[-1])
    assert fps == pytest.approx(8.0 * multiplier)


def test_blend_is_an_exact_cross_fade():
    images = torch.rand(4, 16, 24, 3, generator=torch.Generator().manual_seed(1))
    out, _ = run_node(images, 2, "blend", closed_loop=True)
    assert torch.equal(out[1:-1:2], (images[:-1] + images[1:]) / 2)
    assert torch.equal(out[-1], (images[-1] + images[0]) / 2)
    out, _ = run_node(images, 4, "blend")
    for j in range(1, 4):
        w = j / 4
        torch.testing.assert_close(out[j::4][:3], images[:-1] * (1 - w) + images[1:] * w, rtol=0, atol=1e-6)


def test_motion_moves_the_square_to_the_midpoint_where_a_cross_fade_cannot():
    images = moving_square(6)
    motion, _ = run_node(images, 2, "motion")
    blend, _ = run_node(images, 2, "blend")
    for k in range(5):
        expected_x = 6 + k * STEP + STEP / 2 + (SQUARE - 1) / 2
        x, area = square_fit(motion[2 * k + 1])
        assert abs(x - expected_x) <= 1.0 and abs(area - SQUARE * SQUARE) <= 0.1 * SQUARE * SQUARE, (k, x, area)
        # The cross-fade shows two half-bright squares: only their overlap is solid.
        _, blend_area = square_fit(blend[2 * k + 1])
        assert blend_area <= (SQUARE - STEP) * SQUARE, (k, blend_area)


def test_motion_quarter_steps_and_grey_and_alpha_frames():
    images = moving_square(4)
    out, _ = run_node(images, 4, "motion")
    for k in range(3):
        for j in range(1, 4):
            x, _ = square_fit(out[4 * k + j])
            assert abs(x - (6 + k * STEP + j * STEP / 4 + (SQUARE - 1) / 2)) <= 1.0, (k, j, x)
    for channels in (1, 4):
        frames = torch.cat([images.mean(-1, keepdim=True)] * channels, dim=-1)
        out, _ = run_node(frames, 2, "motion")
        assert out.shape == (7, SIZE, SIZE, channels)
        x, _ = square_fit(out[1][..., :1].expand(-1, -1, 3))
        assert abs(x - (6 + STEP / 2 + (SQUARE - 1) / 2)) <= 1.0


@pytest.mark.parametrize("closed_loop, expected", [(False, 1), (True, 3)])
def test_one_frame_works(closed_loop, expected):
    image = torch.rand(1, 8, 8, 3)
    out, fps = run_node(image, 3, "motion", fps=10.0, closed_loop=closed_loop)
    assert out.shape[0] == expected and torch.equal(out[0], image[0])
    # In-betweens of a frame and itself: the same picture, through ffmpeg's 8-bit YUV.
    torch.testing.assert_close(out, image.expand_as(out), rtol=0, atol=0.03)
    assert fps == pytest.approx(30.0)


@pytest.mark.parametrize("inputs, words", [
    ({"multiplier": 1}, ["multiplier", "2 or more"]),
    ({"multiplier": 0}, ["multiplier", "2 or more"]),
    ({"images": torch.zeros(0, 16, 16, 3)}, ["'images' is empty", "at least one frame"]),
    ({"images": [torch.rand(1, 16, 16, 3), torch.rand(1, 24, 16, 3)]}, ["different sizes", "16x24x3", "ImageScale"]),
    ({"images": torch.rand(2, 16, 16)}, ["'images' has shape", "IMAGE batch"]),
    ({"method": "rife"}, ["'method'", "blend, motion"]),
])
def test_bad_values_name_node_input_and_fix(inputs, words):
    args = {"images": torch.rand(3, 16, 16, 3), "multiplier": 2, "method": "blend", "fps": 8.0, "closed_loop": False}
    with pytest.raises(ValueError) as err:
        call_node(NODE, **{**args, **inputs})
    message = str(err.value)
    assert message.startswith("Interpolate Frames:"), message
    assert all(word in message for word in words), message


def test_frames_of_one_size_given_as_a_list_are_one_sequence():
    frames = [torch.rand(1, 16, 16, 3) for _ in range(3)]
    out, _ = run_node(frames, 2, "blend")
    assert out.shape == (5, 16, 16, 3) and torch.equal(out[4], frames[2][0])


def test_interrupt_stops_ffmpeg_and_raises():
    calls = []

    def interrupt():
        calls.append(1)
        if len(calls) == 3:
            raise InterruptedError("stop")

    with pytest.raises(InterruptedError):
        interpolation.interpolate(moving_square(200, step=0), 2, "motion", node="Interpolate Frames",
                                  check_interrupt=interrupt)
    children = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split()
    names = [Path(f"/proc/{child}/comm").read_text().strip() for child in children]
    assert not [n for n in names if n.startswith("ffmpeg")], "ffmpeg was left running"


MEMORY_CHILD = PROBE + r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import torch
from media import interpolation

count, size = int(sys.argv[2]), int(sys.argv[3])
images = torch.zeros(count, size, size, 3)
for i in range(count):
    left = i * 3 % (size - 8)
    images[i, size // 2 - 4:size // 2 + 4, left:left + 8] = 1.0
interpolation.interpolate(images[:40], 2, "motion", node="Interpolate Frames")
reset_peak()
before = status("VmRSS")
out = interpolation.interpolate(images, 2, "motion", node="Interpolate Frames")
print(json.dumps({"input_bytes": images.nbytes, "output_bytes": out.nbytes, "before": before,
                  "peak": status("VmHWM"), "frames": out.shape[0]}))
"""


def test_motion_memory_stays_near_input_plus_output():
    """1,000 frames stream through ffmpeg: the process grows by the output tensor and little more.

    Measured here: output + 0.1 × input. Holding the input and output as uint8 (say, one ffmpeg call with
    `communicate`) would add 0.75 × input, so the bound of 0.25 × input tells the designs apart.
    """
    proc = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(REPO_ROOT), "1000", "64"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    facts = json.loads(proc.stdout.strip().splitlines()[-1])
    assert facts["frames"] == 1999
    growth = facts["peak"] - facts["before"]
    assert growth <= facts["output_bytes"] + 0.25 * facts["input_bytes"], facts


def write_clip(path: Path, count: int, fps: int, seconds_of_audio: float) -> None:
    """An MP4 of the moving square (H.264) with a stereo 440 Hz tone (AAC) of the given length."""
    pixels = (moving_square(count, step=4) * 255).to(torch.uint8).numpy()
    clip_helpers.write_clip(path, list(pixels), fps, clip_helpers.tone(seconds_of_audio))


def schema_defaults(server, class_type: str) -> dict:
    """Every required input's default from the server's schema, so the prompt names only what matters here."""
    required = server.object_info()[class_type]["input"]["required"]
    return {name: spec[1]["default"] for name, spec in required.items() if len(spec) > 1 and "default" in spec[1]}


def test_prompt_api_load_video_interpolate_combine_keeps_audio(server):
    name = f"animateflow-interp-{uuid.uuid4().hex[:8]}.mp4"
    prefix = "interp_tests/clip"
    count, fps = 8, 8
    write_clip(BASE_DIR / "input" / name, count, fps, seconds_of_audio=count / fps)
    try:
        graph = {
            "1": {"class_type": "AnimateFlow_LoadVideo", "inputs": {
                "video": name, "frame_load_cap": 0, "skip_first_frames": 0, "select_every_nth": 1,
                "force_rate": 0.0, "custom_width": 0, "custom_height": 0}},
            "2": {"class_type": NODE, "inputs": {"images": ["1", 0], "multiplier": 2, "method": "motion",
                                                 "fps": ["1", 2], "closed_loop": False}},
            "3": {"class_type": COMBINE, "inputs": {
                **schema_defaults(server, COMBINE), "images": ["2", 0], "fps": ["2", 1],
                "filename_prefix": prefix, "save_gif": True, "save_mp4": True, "audio": ["1", 3]}},
        }
        outputs = server.run(graph)["outputs"]["3"]
        files = {Path(item["filename"]).suffix: BASE_DIR / "output" / item["subfolder"] / item["filename"]
                 for item in outputs["animateflow"] if item["role"] != "poster"}
        assert set(files) == {".mp4", ".gif"}
        frames = (count - 1) * 2 + 1
        with av.open(str(files[".mp4"])) as container:
            stream = container.streams.video[0]
            assert sum(1 for _ in container.decode(stream)) == frames
            assert float(stream.average_rate) == pytest.approx(2 * fps)
        with av.open(str(files[".mp4"])) as container:
            audio = container.streams.audio[0]
            seconds = sum(f.samples for f in container.decode(audio)) / audio.codec_context.sample_rate
        # The audio follows the interpolated video's length, which is the source's less half a source frame
        # (the last frame now lasts 1/16 s): compared with both, within AAC's frame of 1024 samples.
        assert seconds == pytest.approx(frames / (2 * fps), abs=0.03)
        assert seconds == pytest.approx(count / fps, abs=0.5 / fps + 0.03)
        with Image.open(files[".gif"]) as gif:
            assert gif.n_frames == frames
    finally:
        (BASE_DIR / "input" / name).unlink()
        shutil.rmtree(BASE_DIR / "output" / "interp_tests", ignore_errors=True)
