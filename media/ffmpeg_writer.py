"""Every ffmpeg-made format (MP4, WEBM, H.265, AV1, ProRes, FFV1) through the binary imageio-ffmpeg ships.

Frames go to ffmpeg's stdin as raw RGB(A), 8 or 16 bits, in small chunks, so memory stays near the input tensor
however long the video is. RGB becomes Y'CbCr with the BT.709 matrix in TV range, named in the filter rather than
left to swscale's default (BT.601), and the stream is tagged BT.709 (matrix, primaries, transfer, range):
untagged video is guessed at by players and browsers (BT.601 for small sizes, BT.709 for HD), which shifts
colours. RGB formats (FFV1) keep the planes as they are and are tagged sRGB. Metadata travels in an ffmetadata
file rather than on the command line because a workflow's JSON can exceed the kernel's limit for one argument.
The keys `prompt` and `workflow` are the ones ComfyUI's editor reads back when an MP4 or WEBM is dropped on it.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from . import ffmpeg_process
from .video_formats import FORMATS, Format, Layout, codec_args

log = logging.getLogger(__name__)


class FFmpegError(RuntimeError):
    """ffmpeg refused or failed an encode; the message carries ffmpeg's own words."""


@dataclass(frozen=True)
class VideoSpec:
    """What ffmpeg needs to know about the stream before the first frame arrives."""

    width: int
    height: int
    fps: float


@dataclass(frozen=True)
class Audio:
    """Interleaved float32 samples [S, C] and their rate, already fitted to the video's duration."""

    samples: np.ndarray
    sample_rate: int


def fit_audio(waveform, sample_rate: int, duration_s: float) -> Audio:
    """ComfyUI AUDIO waveform [B, C, S] → the first item, trimmed or zero-padded to `duration_s`."""
    wave = waveform[0].detach().to("cpu").float().numpy()
    wanted = max(1, round(duration_s * sample_rate))
    if wave.shape[1] >= wanted:
        wave = wave[:, :wanted]
    else:
        wave = np.pad(wave, ((0, 0), (0, wanted - wave.shape[1])))
    return Audio(np.ascontiguousarray(wave.T, dtype=np.float32), int(sample_rate))


def _escape_ffmetadata(text: str) -> str:
    for ch in ("\\", "=", ";", "#", "\n"):
        text = text.replace(ch, "\\" + ch)
    return text


def _write_ffmetadata(path: str, metadata: dict[str, object]) -> None:
    lines = [";FFMETADATA1"]
    for key, value in metadata.items():
        text = value if isinstance(value, str) else json.dumps(value)
        lines.append(f"{_escape_ffmetadata(key)}={_escape_ffmetadata(text)}")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


# Colour of every Y'CbCr stream we write. The scale filter converts with this matrix and range; setparams
# stamps the frames (encoders take their VUI / container tags from the frames), and the -color_* options
# say the same to the encoder for muxers that read them from there.
BT709_TAGS = ["-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv"]
# RGB planes as they are: sRGB (BT.709 primaries, sRGB transfer), full range.
SRGB_TAGS = ["-colorspace", "rgb", "-color_primaries", "bt709", "-color_trc", "iec61966-2-1", "-color_range", "pc"]


def yuv_filter(pix_fmt: str) -> str:
    """RGB (full range) → `pix_fmt` with the BT.709 matrix in TV range, frames tagged BT.709."""
    return (f"scale=out_color_matrix=bt709:out_range=tv:flags=accurate_rnd+full_chroma_int,format={pix_fmt},"
            "setparams=range=tv:colorspace=bt709:color_primaries=bt709:color_trc=bt709")


def rgb_filter(pix_fmt: str) -> str:
    return f"format={pix_fmt},setparams=range=pc:colorspace=gbr:color_primaries=bt709:color_trc=iec61966-2-1"


def input_pix_fmt(layout: Layout) -> str:
    """The raw layout our chunks arrive in: 16 bits per channel for formats stored above 8 bits."""
    if layout.depth > 8:
        return "rgba64le" if layout.alpha else "rgb48le"
    return "rgba" if layout.alpha else "rgb24"


def padded_size(fmt: Format, width: int, height: int) -> tuple[int, int]:
    if fmt.even_size:
        return width + width % 2, height + height % 2
    return width, height


def encode(chunks: Iterable[np.ndarray], out_path: str, spec: VideoSpec, fmt: Format | str, *, crf: int,
           preset: str, layout: Layout | None = None, metadata: dict[str, object] | None = None,
           audio: Audio | None = None, node: str) -> None:
    """Stream RGB(A) chunks [k, H, W, 3|4] (uint8, or uint16 for layouts above 8 bits) into `out_path`."""
    fmt = FORMATS[fmt] if isinstance(fmt, str) else fmt
    layout = layout or fmt.layout(8, False)
    rate = Fraction(spec.fps).limit_denominator(1001)
    with tempfile.TemporaryDirectory(prefix="animateflow-ffmpeg-") as work:
        args = ["-y", "-f", "rawvideo", "-pix_fmt", input_pix_fmt(layout), "-s", f"{spec.width}x{spec.height}",
                "-framerate", f"{rate.numerator}/{rate.denominator}", "-i", "pipe:0"]
        maps = ["-map", "0:v"]
        if metadata:
            meta_path = os.path.join(work, "metadata.txt")
            _write_ffmetadata(meta_path, metadata)
            args += ["-f", "ffmetadata", "-i", meta_path]
            maps += ["-map_metadata", "1"]
        if audio is not None and fmt.audio_args:
            audio_path = os.path.join(work, "audio.f32")
            audio.samples.tofile(audio_path)
            args += ["-f", "f32le", "-ar", str(audio.sample_rate), "-ac", str(audio.samples.shape[1]),
                     "-i", audio_path]
            maps += ["-map", f"{2 if metadata else 1}:a", *fmt.audio_args]
        filters = [rgb_filter(layout.pix_fmt) if fmt.rgb else yuv_filter(layout.pix_fmt)]
        if padded_size(fmt, spec.width, spec.height) != (spec.width, spec.height):
            log.warning("%s: %dx%d is odd; %s needs even sizes, padding to %dx%d with black",
                        node, spec.width, spec.height, fmt.label, *padded_size(fmt, spec.width, spec.height))
            filters.insert(0, "pad=ceil(iw/2)*2:ceil(ih/2)*2")
        maps += ["-vf", ",".join(filters), *(SRGB_TAGS if fmt.rgb else BT709_TAGS)]
        args += maps + codec_args(fmt, layout, crf=crf, preset=preset, width=spec.width)
        args += [*fmt.muxer_args, out_path]
        _run(args, chunks, spec, layout, fmt.label, node)


def _checked(chunks: Iterable[np.ndarray], spec: VideoSpec, channels: int, node: str) -> Iterator[np.ndarray]:
    for chunk in chunks:
        if chunk.shape[1:] != (spec.height, spec.width, channels):
            raise ValueError(f"{node}: frame of shape {chunk.shape[1:]} in a {spec.width}x{spec.height} "
                             f"video; every frame of the batch must have the same size")
        yield chunk


def _run(args: list[str], chunks: Iterable[np.ndarray], spec: VideoSpec, layout: Layout, label: str,
         node: str) -> None:
    # SVT-AV1 prints its banner on stderr whatever ffmpeg's log level; 1 keeps its errors only.
    env = {**os.environ, "SVT_LOG": "1"}
    finished = ffmpeg_process.run(args, _checked(chunks, spec, 4 if layout.alpha else 3, node), env=env)
    if finished.code != 0:
        raise FFmpegError(f"{node}: ffmpeg could not write the {label}: {finished.message}")
