"""MP4 (H.264) and WEBM (VP9) through the ffmpeg binary that imageio-ffmpeg ships.

Frames go to ffmpeg's stdin as raw RGB in small chunks, so memory stays near the input tensor however long
the video is. RGB becomes Y'CbCr with the BT.709 matrix in TV range, named in the filter rather than left to
swscale's default (BT.601), and the stream is tagged BT.709 (matrix, primaries, transfer, range): untagged
video is guessed at by players and browsers (BT.601 for small sizes, BT.709 for HD), which shifts colours. Metadata travels in an ffmetadata file rather than on the command line because a workflow's
JSON can exceed the kernel's limit for one argument. The keys `prompt` and `workflow` are the ones
ComfyUI's editor reads back when an MP4 or WEBM is dropped on it.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

import imageio_ffmpeg
import numpy as np

log = logging.getLogger(__name__)

PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
# libvpx has no x264 presets: its speed knob is cpu-used (0 slowest .. 5 fastest in "good" mode).
_VP9_CPU_USED = {"ultrafast": 5, "superfast": 5, "veryfast": 5, "faster": 4, "fast": 4, "medium": 3,
                 "slow": 2, "slower": 1, "veryslow": 1}


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


def yuv_filter(pix_fmt: str) -> str:
    """RGB (full range) → `pix_fmt` with the BT.709 matrix in TV range, frames tagged BT.709."""
    return (f"scale=out_color_matrix=bt709:out_range=tv:flags=accurate_rnd+full_chroma_int,format={pix_fmt},"
            "setparams=range=tv:colorspace=bt709:color_primaries=bt709:color_trc=bt709")


def _codec_args(container: str, crf: int, preset: str, has_audio: bool) -> list[str]:
    if container == "mp4":
        args = ["-c:v", "libx264", "-preset", preset, "-crf", str(crf), *BT709_TAGS,
                "-movflags", "+faststart+use_metadata_tags", "-f", "mp4"]
        return args + (["-c:a", "aac", "-b:a", "192k"] if has_audio else [])
    if container == "webm":
        args = ["-c:v", "libvpx-vp9", "-crf", str(crf), "-b:v", "0", *BT709_TAGS,
                "-deadline", "good", "-cpu-used", str(_VP9_CPU_USED[preset]), "-row-mt", "1", "-f", "webm"]
        return args + (["-c:a", "libopus", "-b:a", "128k"] if has_audio else [])
    raise ValueError(f"unknown container {container!r}")


def needs_even_size(container: str) -> bool:
    """H.264 in yuv420p cannot hold odd sizes; VP9 can."""
    return container == "mp4"


def encode(chunks: Iterable[np.ndarray], out_path: str, spec: VideoSpec, container: str, *, crf: int,
           preset: str, metadata: dict[str, object] | None = None, audio: Audio | None = None,
           node: str = "Video Combine") -> None:
    """Stream uint8 RGB chunks [k, H, W, 3] into an MP4 or WEBM at `out_path` (written in place)."""
    if preset not in PRESETS:
        raise ValueError(f"{node}: preset {preset!r} is not one of {', '.join(PRESETS)}")
    rate = Fraction(spec.fps).limit_denominator(1001)
    with tempfile.TemporaryDirectory(prefix="animateflow-ffmpeg-") as work:
        cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
               "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{spec.width}x{spec.height}",
               "-framerate", f"{rate.numerator}/{rate.denominator}", "-i", "pipe:0"]
        maps = ["-map", "0:v"]
        if metadata:
            meta_path = os.path.join(work, "metadata.txt")
            _write_ffmetadata(meta_path, metadata)
            cmd += ["-f", "ffmetadata", "-i", meta_path]
            maps += ["-map_metadata", "1"]
        if audio is not None:
            audio_path = os.path.join(work, "audio.f32")
            audio.samples.tofile(audio_path)
            cmd += ["-f", "f32le", "-ar", str(audio.sample_rate), "-ac", str(audio.samples.shape[1]),
                    "-i", audio_path]
            maps += ["-map", f"{2 if metadata else 1}:a"]
        filters = [yuv_filter("yuv420p")]
        if needs_even_size(container) and (spec.width % 2 or spec.height % 2):
            log.warning("%s: %dx%d is odd; yuv420p %s needs even sizes, padding to %dx%d with black",
                        node, spec.width, spec.height, container.upper(),
                        spec.width + spec.width % 2, spec.height + spec.height % 2)
            filters.insert(0, "pad=ceil(iw/2)*2:ceil(ih/2)*2")
        maps += ["-vf", ",".join(filters)]
        cmd += maps + _codec_args(container, crf, preset, audio is not None) + [out_path]
        _run(cmd, chunks, spec, container, node)


def _run(cmd: list[str], chunks: Iterable[np.ndarray], spec: VideoSpec, container: str, node: str) -> None:
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors)
        try:
            for chunk in chunks:
                if chunk.shape[1:] != (spec.height, spec.width, 3):
                    raise ValueError(f"{node}: frame of shape {chunk.shape[1:]} in a {spec.width}x{spec.height} "
                                     f"video; every frame of the batch must have the same size")
                proc.stdin.write(memoryview(np.ascontiguousarray(chunk)).cast("B"))
            proc.stdin.close()
        except BrokenPipeError:
            pass
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        code = proc.wait()
        if code != 0:
            errors.seek(0)
            message = errors.read().decode("utf-8", "replace").strip()[:2000] or f"exit status {code}"
            raise FFmpegError(f"{node}: ffmpeg could not write the {container.upper()}: {message}")
