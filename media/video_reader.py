"""Video files → ComfyUI IMAGE batches, streamed so memory stays close to the output tensor alone.

A first pass only demuxes (no decoding) to learn every frame's timestamp; that fixes which source frame fills
which output slot, so the output tensor is allocated once at its final size and each decoded frame is written
into it and dropped. Collecting frames in a list and stacking them would need twice the memory at the end.
Options follow the Video Helper Suite convention users know: the rate change (force_rate) comes first, then
skip_first_frames, select_every_nth and frame_load_cap count frames of the rate-changed sequence.

Y'CbCr becomes RGB with the matrix and range the file is tagged with; an untagged file is read the way players
read it (BT.709 from 1280 wide or taller than 576 lines, BT.601 below), so colours match what users see.
"""

from __future__ import annotations

import bisect
import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import psutil
import torch
from av.video.reformatter import Interpolation

from .image_sequence import Selection
from .read_errors import MediaReadError, reading
from .sealed_input import open_video

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".webm", ".gif", ".mov", ".mkv", ".avi", ".m4v")
MAX_DECODE_ENV = "ANIMATEFLOW_MAX_DECODE_GB"
_DEFAULT_SHARE_OF_AVAILABLE = 0.8


class DecodeTooLargeError(MediaReadError):
    """The frames asked for would not fit in memory; raised before anything is allocated."""


@dataclass
class VideoOptions:
    """What to load; 0 means "no limit" / "keep the source value" as in the node's inputs."""

    frame_load_cap: int = 0
    skip_first_frames: int = 0
    select_every_nth: int = 1
    force_rate: float = 0.0
    width: int = 0
    height: int = 0


@dataclass(frozen=True)
class VideoInfo:
    """The facts of the source file and of what was loaded from it: VideoHelperSuite's video_info, field for
    field (durations in seconds), so its Video Info nodes have an equivalent."""

    source_fps: float
    source_frame_count: int
    source_duration: float
    source_width: int
    source_height: int
    loaded_fps: float
    loaded_frame_count: int
    loaded_duration: float
    loaded_width: int
    loaded_height: int

    def with_loaded(self, frame_count: int) -> VideoInfo:
        """The same facts for a read that delivered `frame_count` frames (a container can list more than it holds)."""
        return replace(self, loaded_frame_count=frame_count, loaded_duration=frame_count / self.loaded_fps)


@dataclass
class LoadedVideo:
    images: torch.Tensor
    """IMAGE [frames, height, width, 3], float32 in 0..1."""
    fps: float
    """Rate at which the loaded frames play at the source's speed (force_rate or source fps, over select_every_nth)."""
    audio: dict | None
    """ComfyUI AUDIO {"waveform": [1, channels, samples], "sample_rate": int} cut to the loaded frames, or None."""
    info: VideoInfo
    bit_depth: int = 8
    """Bits per channel the source stores, in core ComfyUI's terms (8, or 10 for anything deeper)."""

    @property
    def frame_count(self) -> int:
        return self.images.shape[0]


@dataclass
class _Plan:
    sources: list[int]
    """Source frame index (presentation order) for each output frame; non-decreasing."""
    start: float
    end: float
    """Loaded time span in seconds from the first frame, for cutting the audio to match."""
    fps: float


def _bit_depth(stream) -> int:
    """8, or 10 for a source stored deeper (core's VIDEO knows no other depths)."""
    fmt = stream.codec_context.format
    bits = max((component.bits for component in fmt.components), default=8) if fmt is not None else 8
    return 10 if bits > 8 else 8


def _frame_times(path: Path) -> tuple[list[float], float, int, int, int]:
    """Presentation times (s, sorted), source fps, frame size and bit depth, from packets alone (no decoding)."""
    with open_video(path) as container:
        if not container.streams.video:
            raise MediaReadError(f"video file {path} has no video stream")
        stream = container.streams.video[0]
        pts: list[int | None] = []
        try:
            for packet in container.demux(stream):
                if packet.size and not packet.is_discard:
                    pts.append(packet.pts)
        except av.error.FFmpegError as err:
            raise MediaReadError(f"video file {path} is corrupt: {err}") from err
        rate = stream.average_rate or stream.guessed_rate
        time_base = stream.time_base
        width, height = stream.codec_context.width, stream.codec_context.height
        depth = _bit_depth(stream)
    if not pts:
        raise MediaReadError(f"video file {path} has no frames")
    if rate is None and len(pts) > 1 and None not in pts:
        span = (max(pts) - min(pts)) * time_base
        rate = Fraction(len(pts) - 1) / span if span else None
    fps = float(rate) if rate else 8.0
    if None in pts or time_base is None:
        times = [i / fps for i in range(len(pts))]
    else:
        times = sorted(float(p * time_base) for p in pts)
    return times, fps, width, height, depth


def _plan(times: list[float], fps: float, options: VideoOptions) -> _Plan:
    t0 = times[0]
    rel = [t - t0 for t in times]
    if options.force_rate > 0:
        rate = options.force_rate
        duration = rel[-1] + 1 / fps
        count = max(1, math.ceil(duration * rate - 1e-6))
        grid = [k / rate for k in range(count)]
        sources = [max(0, bisect.bisect_right(rel, t + 1e-6) - 1) for t in grid]
    else:
        rate = fps
        grid = rel
        sources = list(range(len(rel)))
    nth = max(1, options.select_every_nth)
    chosen = Selection(options.skip_first_frames, nth, options.frame_load_cap).apply(list(range(len(sources))))
    if not chosen:
        raise MediaReadError(
            f"no frames left to load: the video has {len(sources)} frames at the chosen rate and "
            f"skip_first_frames is {options.skip_first_frames}"
        )
    start = grid[chosen[0]]
    return _Plan([sources[k] for k in chosen], start, start + len(chosen) * nth / rate, rate / nth)


def _output_size(width: int, height: int, options: VideoOptions) -> tuple[int, int]:
    """Target size; with only one side given the other keeps the source's aspect ratio."""
    if options.width and options.height:
        return options.width, options.height
    if options.width:
        return options.width, max(1, round(height * options.width / width))
    if options.height:
        return max(1, round(width * options.height / height)), options.height
    return width, height


# AVColorSpace (what a file is tagged with) → swscale's matrix names.
_MATRICES = {1: "ITU709", 4: "FCC", 5: "ITU601", 6: "ITU601", 7: "SMPTE240M", 9: "BT2020", 10: "BT2020"}
_AVCOL_RANGE_MPEG, _AVCOL_RANGE_JPEG = 1, 2


def _to_rgb_interpolation():
    """Bicubic chroma with full-precision rounding: a flat colour comes back within one code of what was encoded.
    Older PyAV (16.1 has only the scalers in its Interpolation type; requirements allow 14.2 on) gets bicubic alone
    rather than an import error."""
    flags = [getattr(Interpolation, name, None) for name in ("ACCURATE_RND", "FULL_CHR_H_INT")]
    if None in flags:
        return Interpolation.BICUBIC
    return Interpolation.BICUBIC | flags[0] | flags[1]


_TO_RGB = _to_rgb_interpolation()


def source_colour(frame: av.VideoFrame) -> tuple[str, int] | None:
    """(swscale matrix, AVColorRange) the frame's Y'CbCr was made with; None for RGB or palette frames."""
    fmt = frame.format
    if fmt.is_rgb or len(fmt.components) < 3:  # RGB, palette (GIF) or grey: no matrix involved
        return None
    matrix = _MATRICES.get(int(frame.colorspace))
    if matrix is None:
        matrix = "ITU709" if frame.width >= 1280 or frame.height > 576 else "ITU601"
    colour_range = int(frame.color_range)
    if colour_range not in (_AVCOL_RANGE_MPEG, _AVCOL_RANGE_JPEG):
        colour_range = _AVCOL_RANGE_JPEG if fmt.name.startswith("yuvj") else _AVCOL_RANGE_MPEG
    return matrix, colour_range


def to_rgb24(frame: av.VideoFrame, width: int, height: int):
    """The frame as full-range RGB [H, W, 3] uint8 at the given size, converted with its own matrix and range."""
    colour = source_colour(frame)
    if colour is None:
        return frame.to_ndarray(format="rgb24", width=width, height=height, interpolation=_TO_RGB)
    matrix, colour_range = colour
    return frame.reformat(width=width, height=height, format="rgb24", src_colorspace=matrix,
                          src_color_range=colour_range, dst_color_range=_AVCOL_RANGE_JPEG,
                          interpolation=_TO_RGB).to_ndarray()


def _decoded_frames(path: Path, plan: _Plan, width: int, height: int) -> Iterator[tuple[int, int, np.ndarray]]:
    """Each decoded frame that the plan uses, as (first slot, end slot, uint8 RGB [H, W, 3]).

    A frame fills every output slot in [first, end): force_rate repeats a source frame in consecutive slots.
    Both the IMAGE path and the chunked (latent) path read frames here, so they convert colours alike.
    """
    filled = 0
    with open_video(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for index, frame in enumerate(container.decode(stream)):
                if filled == len(plan.sources):
                    break
                if index < plan.sources[filled]:
                    continue
                first = filled
                while filled < len(plan.sources) and plan.sources[filled] <= index:
                    filled += 1
                yield first, filled, to_rgb24(frame, width, height)
        except av.error.FFmpegError as err:
            raise MediaReadError(f"video file {path} is corrupt after frame {filled}: {err}") from err


def _decode_into(path: Path, plan: _Plan, out: torch.Tensor) -> int:
    """Fill `out` from the decoder, one frame at a time; returns how many output slots were filled."""
    height, width = out.shape[1:3]
    filled = 0
    for first, filled, pixels in _decoded_frames(path, plan, width, height):
        out[first].copy_(torch.from_numpy(pixels)).div_(255.0)
        out[first + 1 : filled].copy_(out[first].expand(filled - first - 1, -1, -1, -1))
    return filled


def _read_audio(path: Path, start: float, end: float, video_start: float) -> dict | None:
    """The audio track between `start` and `end` (seconds from the first video frame), planar float32."""
    with open_video(path) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="fltp", layout=stream.layout, rate=stream.rate)
        chunks: list[torch.Tensor] = []
        audio_start = None
        try:
            for frame in container.decode(stream):
                if audio_start is None and frame.time is not None:
                    audio_start = frame.time
                chunks.extend(torch.from_numpy(f.to_ndarray()) for f in resampler.resample(frame))
            chunks.extend(torch.from_numpy(f.to_ndarray()) for f in resampler.resample(None))
        except av.error.FFmpegError as err:
            raise MediaReadError(f"audio track of {path} is corrupt: {err}") from err
        rate = stream.rate
    if not chunks:
        return None
    waveform = torch.cat(chunks, dim=1)
    offset = video_start - (audio_start or 0.0)
    first = max(0, round((start + offset) * rate))
    last = max(first, round((end + offset) * rate))
    return {"waveform": waveform[:, first:last].unsqueeze(0).contiguous(), "sample_rate": rate}


def decode_limit_bytes() -> tuple[int, str]:
    """How many bytes a decoded batch may take, and where that limit comes from (for the error message)."""
    override = os.environ.get(MAX_DECODE_ENV, "").strip()
    if override:
        try:
            gigabytes = float(override)
        except ValueError:
            raise MediaReadError(f"the environment variable {MAX_DECODE_ENV} is {override!r}; set it to a number of "
                             "gigabytes, e.g. 32") from None
        return int(gigabytes * 2**30), f"set by the environment variable {MAX_DECODE_ENV}"
    available = psutil.virtual_memory().available
    return int(available * _DEFAULT_SHARE_OF_AVAILABLE), (
        f"{_DEFAULT_SHARE_OF_AVAILABLE:.0%} of the RAM available now; whoever runs the server can set another "
        f"limit in GB with the environment variable {MAX_DECODE_ENV}")


def check_decode_size(frames: int, width: int, height: int, path: Path | None = None) -> None:
    """Refuse a load whose IMAGE batch (float32 RGB) would exceed the limit, before decoding a frame."""
    need = frames * height * width * 3 * 4 + height * width * 3
    limit, source = decode_limit_bytes()
    if need > limit:
        of = f" of {path}" if path is not None else ""
        raise DecodeTooLargeError(
            f"loading {frames} frames{of} at {width}x{height} needs {need / 2**30:.1f} GB of RAM, above the limit of "
            f"{limit / 2**30:.1f} GB ({source}). Load fewer frames (frame_load_cap, select_every_nth) or a smaller "
            "size (custom_width, custom_height)"
        )


def _check(options: VideoOptions) -> None:
    if options.select_every_nth < 1 or options.skip_first_frames < 0 or options.frame_load_cap < 0:
        raise MediaReadError("select_every_nth must be at least 1; skip_first_frames and frame_load_cap at least 0")


def _planned(path: Path, options: VideoOptions) -> tuple[list[float], _Plan, int, int, int, VideoInfo]:
    """Frame times, which frames to take, the output size, the source's bit depth and the facts of both: what a
    whole read and a chunked read share."""
    _check(options)
    times, fps, src_width, src_height, depth = _frame_times(path)
    plan = _plan(times, fps, options)
    width, height = _output_size(src_width, src_height, options)
    info = VideoInfo(fps, len(times), times[-1] - times[0] + 1 / fps, src_width, src_height,
                     plan.fps, 0, 0.0, width, height).with_loaded(len(plan.sources))
    return times, plan, width, height, depth, info


def read_video(path: Path | str, options: VideoOptions | None = None) -> LoadedVideo:
    """Decode a video file into an IMAGE batch with its fps and audio (None when it has no audio stream)."""
    path = Path(path)
    with reading(path):
        times, plan, width, height, depth, info = _planned(path, options or VideoOptions())
        check_decode_size(len(plan.sources), width, height, path)
        out = torch.empty((len(plan.sources), height, width, 3), dtype=torch.float32)
        filled = _decode_into(path, plan, out)
        if filled == 0:
            raise MediaReadError(f"video file {path}: no frame could be decoded")
        if filled < len(plan.sources):
            log.warning("%s: container lists %d frames but only %d decoded", path, len(plan.sources), filled)
            out = out[:filled]
        audio = _read_audio(path, plan.start, plan.end, times[0])
    log.info("loaded %d frames %dx%d at %.3f fps from %s", filled, width, height, plan.fps, path)
    return LoadedVideo(out, plan.fps, audio, info.with_loaded(filled), depth)


@dataclass
class VideoStream:
    """A planned read delivered in chunks, for consumers that never hold the whole IMAGE batch (latent encoding).

    Same options, frame choice, size and audio as `read_video`; `decoded` counts the frames delivered so far,
    which can fall short of `frame_count` when a container lists more frames than it holds.
    """

    path: Path
    width: int
    height: int
    fps: float
    frame_count: int
    plan: _Plan
    video_start: float
    info: VideoInfo
    decoded: int = 0

    def chunks(self, size: int) -> Iterator[torch.Tensor]:
        """Consecutive float32 chunks [k, H, W, 3] in 0..1, k <= size; each chunk is a fresh tensor."""
        block = torch.empty((size, self.height, self.width, 3), dtype=torch.float32)
        used = 0
        self.decoded = 0
        with reading(self.path):
            for first, end, pixels in _decoded_frames(self.path, self.plan, self.width, self.height):
                frame = torch.from_numpy(pixels)
                for _ in range(end - first):
                    block[used].copy_(frame).div_(255.0)
                    used += 1
                    self.decoded += 1
                    if used == size:
                        yield block
                        block = torch.empty_like(block)
                        used = 0
        if used:
            yield block[:used]

    def audio(self) -> dict | None:
        with reading(self.path):
            return _read_audio(self.path, self.plan.start, self.plan.end, self.video_start)


def open_stream(path: Path | str, options: VideoOptions | None = None) -> VideoStream:
    """Plan a chunked read of `path` (demuxes to learn frame times; decodes nothing yet)."""
    path = Path(path)
    with reading(path):
        times, plan, width, height, _depth, info = _planned(path, options or VideoOptions())
    return VideoStream(path, width, height, plan.fps, len(plan.sources), plan, times[0], info)
