"""True colour: Video Combine converts RGB with the BT.709 matrix in TV range and tags the stream so; Load Video
converts with the tags a file carries (untagged: BT.601 below HD, BT.709 from HD, as players do).

The references are written here from the standards, never from our code: Y'CbCr from ITU-R BT.709 / BT.601
(Kr, Kb and the 219/224 TV-range scaling), CIELAB from IEC 61966-2-1 (sRGB) and CIE 15 (D65), ΔE as CIE76.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import av
import imageio_ffmpeg
import numpy as np
import pytest
import torch
from conftest import BASE_DIR, call_node, pack_module

pytestmark = pytest.mark.host

video_reader = pack_module("media.video_reader")
OUTPUT = BASE_DIR / "output"
NODE = "AnimateFlow_VideoCombine"
BLOCK = 16
# 16 patches: primaries, secondaries, skin tones, sky, foliage, greys; flat 16x16 blocks so chroma
# subsampling and the codec leave each block's centre alone.
PATCHES = np.array([
    [230, 30, 30], [30, 200, 40], [40, 50, 220], [240, 240, 240],
    [30, 220, 220], [220, 40, 210], [235, 225, 40], [20, 20, 20],
    [225, 170, 140], [140, 95, 70], [90, 140, 210], [70, 120, 50],
    [128, 128, 128], [200, 100, 30], [100, 40, 140], [60, 180, 160],
], dtype=np.float64)
KR_KB = {"bt709": (0.2126, 0.0722), "bt601": (0.299, 0.114)}


def patch_frame(block_h: int = BLOCK, block_w: int = BLOCK) -> np.ndarray:
    """[4 * block_h, 4 * block_w, 3] uint8: the 16 patches as a 4x4 grid of flat blocks."""
    grid = PATCHES.reshape(4, 4, 3).astype(np.uint8)
    return np.repeat(np.repeat(grid, block_h, axis=0), block_w, axis=1)


def centres(plane: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """Mean of the 4x4 pixels at the centre of each block, in patch order: [16, ...]."""
    half, out = block // 2, []
    for row in range(4):
        for col in range(4):
            y, x = row * block + half, col * block + half
            out.append(plane[y - 2:y + 2, x - 2:x + 2].reshape(16, *plane.shape[2:]).astype(np.float64).mean(0))
    return np.array(out)


def ycbcr(rgb: np.ndarray, matrix: str, full_range: bool = False) -> np.ndarray:
    """8-bit Y'CbCr of 8-bit R'G'B' by the standard's equations (Kr, Kb; TV range 16-235 / 16-240)."""
    kr, kb = KR_KB[matrix]
    r, g, b = (rgb[..., i] / 255.0 for i in range(3))
    y = kr * r + (1 - kr - kb) * g + kb * b
    cb, cr = (b - y) / (2 * (1 - kb)), (r - y) / (2 * (1 - kr))
    if full_range:
        return np.stack([255 * y, 128 + 255 * cb, 128 + 255 * cr], -1)
    return np.stack([16 + 219 * y, 128 + 224 * cb, 128 + 224 * cr], -1)


def lab(rgb: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of 8-bit sRGB."""
    c = rgb / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = linear @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]).T
    t = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def delta_e(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """CIE76 colour difference per patch; about 2.3 is a just noticeable difference."""
    return np.linalg.norm(lab(a) - lab(b), axis=-1)


def planes(frame: av.VideoFrame) -> np.ndarray:
    """The decoded Y'CbCr 4:2:0 frame as [H, W, 3] with chroma repeated to full size (no conversion)."""
    assert frame.format.name == "yuv420p"
    h, w = frame.height, frame.width
    raw = frame.to_ndarray()
    y = raw[:h]
    u = raw[h:h + h // 4].reshape(h // 2, w // 2)
    v = raw[h + h // 4:].reshape(h // 2, w // 2)
    up = lambda p: np.repeat(np.repeat(p, 2, 0), 2, 1)  # noqa: E731
    return np.stack([y, up(u), up(v)], -1)


@pytest.fixture
def prefix(request):
    sub = f"colour_tests/{request.node.name.replace('[', '_').replace(']', '')}"
    shutil.rmtree(OUTPUT / sub, ignore_errors=True)
    yield f"{sub}/clip"
    shutil.rmtree(OUTPUT / sub, ignore_errors=True)


def combine(images: torch.Tensor, prefix: str, container: str, crf: int = 19) -> str:
    paths, _ = call_node(NODE, images=images, fps=8.0, filename_prefix=prefix, save_gif=False,
                         save_mp4=container == "mp4", save_webm=container == "webm", crf=crf)
    return paths


def frames_tensor(frame: np.ndarray, count: int = 2) -> torch.Tensor:
    return torch.from_numpy(frame).float().div(255).unsqueeze(0).repeat(count, 1, 1, 1)


@pytest.mark.parametrize("container", ["mp4", "webm"])
def test_writer_converts_with_the_bt709_matrix_in_tv_range(prefix, container):
    path = combine(frames_tensor(patch_frame()), prefix, container, crf=4)
    with av.open(path) as opened:
        written = centres(planes(next(opened.decode(video=0))))
    expected = ycbcr(PATCHES, "bt709")
    assert np.abs(written - expected).max() <= 3, np.abs(written - expected).max()
    # BT.601 (swscale's default) would be far off on saturated colours: the test can tell them apart.
    assert np.abs(ycbcr(PATCHES, "bt601") - expected).max() > 10


@pytest.mark.parametrize("container, pix_fmt", [("mp4", "yuv420p"), ("webm", "yuv420p")])
def test_stream_is_tagged_bt709_tv_range(prefix, container, pix_fmt):
    path = combine(frames_tensor(patch_frame()), prefix, container)
    with av.open(path) as opened:
        codec = opened.streams.video[0].codec_context
        tags = (codec.colorspace, codec.color_primaries, codec.color_trc, codec.color_range)
    assert tags == (1, 1, 1, 1), "AVCOL_SPC_BT709, AVCOL_PRI_BT709, AVCOL_TRC_BT709, AVCOL_RANGE_MPEG"
    probe = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", path], capture_output=True,
                           text=True)
    assert re.search(rf"Video: .*{pix_fmt}\(tv, bt709, progressive\)", probe.stderr), probe.stderr


@pytest.mark.parametrize("container", ["mp4", "webm"])
def test_colour_patches_survive_save_load_save_load(prefix, container):
    original = patch_frame()
    first = combine(frames_tensor(original), prefix, container)
    loaded = video_reader.read_video(first).images
    second = combine(loaded, prefix, container)
    again = video_reader.read_video(second).images
    assert again.shape == (2, 64, 64, 3)
    result = centres((again[-1].numpy() * 255).round())
    differences = delta_e(result, PATCHES)
    assert differences.max() < 2.5 and differences.mean() < 1.2, differences.round(2)


def write_yuv_clip(path: Path, rgb: np.ndarray, matrix: str, full_range: bool, tagged: bool) -> Path:
    """A lossless H.264 clip whose Y'CbCr planes are computed here by the standard's equations, tagged or not."""
    h, w = rgb.shape[:2]
    yuv = np.clip(np.round(ycbcr(rgb.astype(np.float64), matrix, full_range)), 0, 255).astype(np.uint8)
    packed = np.concatenate([yuv[..., 0], yuv[::2, ::2, 1].reshape(h // 4, w), yuv[::2, ::2, 2].reshape(h // 4, w)])
    space = {"bt709": 1, "bt601": 6}[matrix]
    colour_range = 2 if full_range else 1
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.options = {"qp": "0"}
        if tagged:
            codec = stream.codec_context
            codec.colorspace = codec.color_primaries = codec.color_trc = space
            codec.color_range = colour_range
        frame = av.VideoFrame.from_ndarray(packed, format="yuv420p")
        if tagged:
            frame.colorspace, frame.color_range = space, colour_range
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


@pytest.mark.parametrize("matrix, full_range, tagged, block", [
    ("bt709", False, True, (BLOCK, BLOCK)),
    ("bt601", False, True, (BLOCK, BLOCK)),
    ("bt709", True, True, (BLOCK, BLOCK)),
    ("bt601", False, False, (BLOCK, BLOCK)),  # untagged SD (64x64): players assume BT.601
    ("bt709", False, False, (180, 320)),  # untagged HD (1280x720): players assume BT.709
])
def test_reader_converts_with_the_files_own_tags(tmp_path, matrix, full_range, tagged, block):
    clip = write_yuv_clip(tmp_path / "clip.mp4", patch_frame(*block), matrix, full_range, tagged)
    loaded = video_reader.read_video(clip).images[0].numpy() * 255
    block_h, block_w = block
    found = np.array([loaded[r * block_h + block_h // 2, c * block_w + block_w // 2] for r in range(4)
                      for c in range(4)])
    differences = delta_e(found.round(), PATCHES)
    assert differences.max() < 1.5, differences.round(2)
