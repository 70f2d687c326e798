"""Video Combine's formats beyond H.264 and GIF: every one decoded back (PyAV, ffmpeg's own libvpx decoder,
Pillow) and checked for frame count, size, fps, bit depth and, where a mask is given, the alpha channel.

Frames are 48x32 (x265's 10-bit AVX2 code crashes at this width: the writer must avoid it) and 6 per clip, each a
different grey so frame order survives lossy codecs; the mask is a left-to-right ramp so partial alpha counts.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import av
import folder_paths
import imageio_ffmpeg
import nodes
import numpy as np
import pytest
import torch
from conftest import BASE_DIR
from PIL import Image

from scripts import inprocess

from comfy_api.latest import io

pytestmark = pytest.mark.host

NODE = "AnimateFlow_VideoCombine"
OUTPUT = BASE_DIR / "output"
W, H, COUNT, FPS = 48, 32, 6, 12.0
# The widgets saved workflows store, in the order the editor writes them into widgets_values.
SAVED_WIDGETS = ["fps", "filename_prefix", "save_gif", "save_mp4", "save_webm", "save_png", "save_txt",
                 "loop_count", "reverse", "remove_head", "remove_tail", "gif_dither", "gif_optimize",
                 "gifsicle_optimize", "gifsicle_lossy", "crf", "preset"]


def frames_and_mask() -> tuple[torch.Tensor, torch.Tensor]:
    levels = torch.linspace(0.15, 0.85, COUNT).view(COUNT, 1, 1, 1)
    images = levels.expand(COUNT, H, W, 3).clone()
    images[..., 0] = 0.8  # a red cast, so a channel swap would show
    ramp = torch.linspace(0, 1, W).view(1, 1, W).expand(COUNT, H, W).clone()
    return images, ramp


def run(prefix: str, **inputs):
    defaults = {"fps": FPS, "filename_prefix": prefix, "save_gif": False, "save_mp4": False}
    return inprocess.run_v3_node(NODE, None, **{**defaults, **inputs})


@pytest.fixture
def prefix(request):
    sub = f"fmt_tests/{request.node.name.replace('[', '_').replace(']', '')}"
    shutil.rmtree(OUTPUT / sub, ignore_errors=True)
    yield f"{sub}/clip"
    shutil.rmtree(OUTPUT / sub, ignore_errors=True)


def only_file(out, suffix: str) -> Path:
    found = [Path(p) for p in out.args[0].split("\n") if p.endswith(suffix)]
    assert len(found) == 1, out.args[0]
    return found[0]


def pyav_facts(path: Path, to: str = "rgb24") -> dict:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        pictures = [frame.to_ndarray(format=to) for frame in container.decode(stream)]
        codec = stream.codec_context
        return {"frames": len(pictures), "size": (codec.width, codec.height), "fps": float(stream.average_rate),
                "codec": codec.name, "pix_fmt": codec.pix_fmt, "pictures": pictures,
                "tags": (codec.colorspace, codec.color_primaries, codec.color_trc, codec.color_range)}


def ffmpeg_rgba(path: Path, decoder: list[str]) -> np.ndarray:
    """Frames as RGBA through the ffmpeg binary (libvpx's decoder keeps VP9's alpha; the native one drops it)."""
    raw = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", *decoder, "-i",
                          str(path), "-f", "rawvideo", "-pix_fmt", "rgba", "-"], capture_output=True, check=True)
    return np.frombuffer(raw.stdout, np.uint8).reshape(-1, H, W, 4)


def assert_order_kept(pictures) -> None:
    greens = [float(np.asarray(p)[..., 1].mean()) for p in pictures]
    expected = np.linspace(0.15, 0.85, COUNT) * 255
    assert np.abs(np.array(greens) - expected).max() < 6, greens


def assert_alpha(alpha_planes, tolerance: float) -> None:
    ramp = np.linspace(0, 255, W)
    for plane in alpha_planes:
        assert np.abs(plane.astype(np.float64).mean(0) - ramp).max() <= tolerance


@pytest.mark.parametrize("depth, pix_fmt", [("8", "yuv420p"), ("10", "yuv420p10le")])
def test_h265_mp4(prefix, depth, pix_fmt):
    images, _ = frames_and_mask()
    out = run(prefix, images=images, extra_format="h265-mp4", bit_depth=depth)
    facts = pyav_facts(only_file(out, "_h265.mp4"))
    assert (facts["frames"], facts["size"], facts["codec"], facts["pix_fmt"]) == (COUNT, (W, H), "hevc", pix_fmt)
    assert facts["fps"] == pytest.approx(FPS) and facts["tags"] == (1, 1, 1, 1)
    assert_order_kept(facts["pictures"])


@pytest.mark.parametrize("depth, pix_fmt", [("8", "yuv420p"), ("10", "yuv420p10le")])
def test_av1_mp4(prefix, depth, pix_fmt):
    images, _ = frames_and_mask()
    out = run(prefix, images=images, extra_format="av1-mp4", bit_depth=depth, extra_crf=20)
    facts = pyav_facts(only_file(out, "_av1.mp4"))
    assert (facts["frames"], facts["size"], facts["pix_fmt"]) == (COUNT, (W, H), pix_fmt)
    assert facts["codec"] in ("libdav1d", "av1") and facts["fps"] == pytest.approx(FPS)
    assert facts["tags"] == (1, 1, 1, 1)
    assert_order_kept(facts["pictures"])


def test_vp9_webm_10_bit(prefix):
    images, _ = frames_and_mask()
    out = run(prefix, images=images, save_webm=True, bit_depth="10")
    facts = pyav_facts(only_file(out, ".webm"))
    assert (facts["frames"], facts["size"], facts["pix_fmt"]) == (COUNT, (W, H), "yuv420p10le")
    assert facts["fps"] == pytest.approx(FPS)
    assert_order_kept(facts["pictures"])


def test_vp9_webm_with_alpha_from_the_mask(prefix):
    images, mask = frames_and_mask()
    out = run(prefix, images=images, save_webm=True, mask=mask)
    path = only_file(out, ".webm")
    facts = pyav_facts(path)
    assert (facts["frames"], facts["size"]) == (COUNT, (W, H)) and facts["fps"] == pytest.approx(FPS)
    rgba = ffmpeg_rgba(path, ["-c:v", "libvpx-vp9"])
    assert rgba.shape == (COUNT, H, W, 4)
    assert_alpha(rgba[..., 3], tolerance=12)
    assert_order_kept(rgba[..., :3])


def test_prores_4444_with_alpha(prefix):
    images, mask = frames_and_mask()
    out = run(prefix, images=images, extra_format="prores-4444-mov", mask=mask)
    facts = pyav_facts(only_file(out, "_prores.mov"), to="rgba")
    assert (facts["frames"], facts["size"], facts["codec"]) == (COUNT, (W, H), "prores")
    assert facts["pix_fmt"].startswith("yuva444p1") and facts["fps"] == pytest.approx(FPS)
    assert_alpha([p[..., 3] for p in facts["pictures"]], tolerance=2)  # 16-bit alpha back to 8 bits
    assert_order_kept([p[..., :3] for p in facts["pictures"]])


@pytest.mark.parametrize("depth, pix_fmt", [("8", "bgra"), ("10", "gbrap10le")])
def test_ffv1_is_lossless_with_alpha(prefix, depth, pix_fmt):
    images, mask = frames_and_mask()
    out = run(prefix, images=images, extra_format="ffv1-mkv", bit_depth=depth, mask=mask)
    facts = pyav_facts(only_file(out, "_ffv1.mkv"), to="rgba64le" if depth == "10" else "rgba")
    assert (facts["frames"], facts["size"], facts["pix_fmt"]) == (COUNT, (W, H), pix_fmt)
    assert facts["fps"] == pytest.approx(FPS)
    expected = torch.cat([images, mask.unsqueeze(-1)], -1).numpy()
    # Exact to the stored precision: half a step at 8 bits; at 10 bits swscale truncates our 16-bit input.
    step = 1 / 1023 if depth == "10" else 0.5 / 255
    for got, want in zip(facts["pictures"], expected):
        got = got.astype(np.float64) / (65535 if depth == "10" else 255)
        assert np.abs(got - want).max() <= step + 1e-6


def test_webp_with_alpha_loop_and_workflow(prefix):
    images, mask = frames_and_mask()
    hidden = {"prompt": {"1": {"class_type": "EmptyImage"}}, "workflow": {"nodes": []}}
    hidden_inputs = {io.Hidden.prompt: hidden["prompt"], io.Hidden.extra_pnginfo: {"workflow": hidden["workflow"]}}
    out = inprocess.run_v3_node(NODE, hidden_inputs, images=images, fps=FPS, filename_prefix=prefix, save_gif=False, save_mp4=False,
                   extra_format="webp", mask=mask, loop_count=3, webp_quality=100)
    with Image.open(only_file(out, ".webp")) as webp:
        assert (webp.n_frames, webp.size, webp.info["loop"]) == (COUNT, (W, H), 3)
        durations, pictures = [], []
        for index in range(webp.n_frames):
            webp.seek(index)
            webp.load()
            durations.append(webp.info["duration"])
            pictures.append(np.asarray(webp.convert("RGBA")))
        exif = webp.getexif()
    assert sum(durations) == pytest.approx(COUNT * 1000 / FPS, abs=COUNT)
    expected = (torch.cat([images, mask.unsqueeze(-1)], -1).numpy() * 255).round()
    for picture, want in zip(pictures, expected):  # lossless WEBP keeps every visible pixel exactly
        visible = want[..., 3] > 0
        assert np.array_equal(picture[visible], want[visible])
    assert_alpha([p[..., 3] for p in pictures], tolerance=0.5)
    texts = {value.split(":", 1)[0]: json.loads(value.split(":", 1)[1]) for value in exif.values()}
    assert texts == hidden, "ComfyUI's editor reads prompt/workflow from these EXIF strings"


def test_png_frames_and_poster_keep_the_alpha_of_an_rgba_batch(prefix):
    images, mask = frames_and_mask()
    rgba = torch.cat([images, mask.unsqueeze(-1)], -1)
    out = run(prefix, images=rgba, save_png=True, save_gif=True)
    pngs = [Path(p) for p in out.args[0].split("\n") if p.endswith(".png")]
    assert len(pngs) == COUNT
    with Image.open(pngs[0]) as png:
        assert png.mode == "RGBA"
        assert_alpha([np.asarray(png)[..., 3]], tolerance=0.5)
    poster = out.ui["animateflow"][-1]
    assert poster["role"] == "poster" and poster["alpha"] is True
    with Image.open(Path(folder_paths.get_temp_directory()) / poster["filename"]) as image:
        assert image.mode == "RGBA" and image.size == (W, H)
    assert any("alpha not stored in GIF" in note for note in out.ui["animateflow_info"])


def test_payload_lists_playable_files_best_first_with_alpha_ahead(prefix):
    images, mask = frames_and_mask()
    out = run(prefix, images=images, mask=mask, save_mp4=True, save_webm=True, save_gif=True,
              extra_format="webp", webp_quality=80)
    items = out.ui["animateflow"]
    assert [(i["format"], i["role"], i["alpha"]) for i in items] == [
        ("video/webm", "video", True), ("video/h264-mp4", "video", False), ("image/webp", "animation", True),
        ("image/gif", "animation", False), ("image/png", "poster", True)]
    assert items[0]["mime"] == 'video/webm; codecs="vp9"' and items[1]["mime"].startswith('video/mp4; codecs="avc1')
    for item in items:
        assert set(item) == {"filename", "subfolder", "type", "format", "mime", "role", "frame_rate", "frame_count",
                             "width", "height", "alpha"}
        assert (item["frame_count"], item["width"], item["height"], item["frame_rate"]) == (COUNT, W, H, FPS)


def test_prores_and_ffv1_are_not_offered_to_the_browser(prefix):
    images, _ = frames_and_mask()
    out = run(prefix, images=images, extra_format="prores-4444-mov")
    assert [item["role"] for item in out.ui["animateflow"]] == ["poster"]
    assert out.args[1].get_dimensions() == (W, H), "the VIDEO output is the ProRes file"


def test_preview_only_writes_to_the_temp_folder(prefix):
    images, _ = frames_and_mask()
    out = run(prefix, images=images, save_gif=True, save_mp4=True, preview_only=True)
    temp = Path(folder_paths.get_temp_directory()).resolve()
    files = [Path(p) for p in out.args[0].split("\n")]
    assert files and all(path.resolve().is_relative_to(temp) for path in files)
    assert all(item["type"] == "temp" for item in out.ui["animateflow"])
    assert not (OUTPUT / Path(prefix).parent).exists()
    shutil.rmtree(temp / Path(prefix).parent)


def test_extra_crf_sets_quality_and_is_checked(prefix):
    images = torch.rand(COUNT, 64, 64, 3, generator=torch.Generator().manual_seed(1))
    sizes = []
    for crf in (12, 45):
        out = run(prefix, images=images, extra_format="h265-mp4", extra_crf=crf, preset="ultrafast")
        sizes.append(only_file(out, "_h265.mp4").stat().st_size)
        only_file(out, "_h265.mp4").unlink()
    assert sizes[0] > 2 * sizes[1], sizes
    with pytest.raises(ValueError, match="Video Combine: extra_crf 60 is outside H.265 MP4's range 0-51"):
        run(prefix, images=images, extra_format="h265-mp4", extra_crf=60)


def test_mask_that_does_not_fit_is_refused(prefix):
    images, mask = frames_and_mask()
    with pytest.raises(ValueError, match="Video Combine: mask has shape \\(6, 32, 40\\) but images are 6 frames "
                                         "of 48x32"):
        run(prefix, images=images, mask=mask[..., :40], save_webm=True)
    one = run(prefix, images=images, mask=mask[:1], extra_format="ffv1-mkv")  # one mask serves every frame
    assert pyav_facts(only_file(one, "_ffv1.mkv"))["frames"] == COUNT


def test_saved_workflows_keep_their_widget_positions_and_behaviour(prefix):
    info = nodes.NODE_CLASS_MAPPINGS[NODE].INPUT_TYPES()
    widgets = [name for section in ("required", "optional") for name, spec in info.get(section, {}).items()
               if spec[0] not in ("IMAGE", "AUDIO", "MASK", "LATENT", "VAE")]
    assert widgets[:len(SAVED_WIDGETS)] == SAVED_WIDGETS, "new widgets must come after the saved ones"
    api = json.loads((Path(__file__).parent.parent / "example_workflows/api/boomerang_gif.json").read_text())
    saved_inputs = {k: v for k, v in api["9"]["inputs"].items() if k != "images"}
    images, _ = frames_and_mask()
    out = run(prefix, images=images, **{**saved_inputs, "filename_prefix": prefix})
    assert [Path(p).suffix for p in out.args[0].split("\n")] == [".gif"]
    assert [item["role"] for item in out.ui["animateflow"]] == ["animation", "poster"]
