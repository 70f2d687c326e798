"""Video Combine's core: one IMAGE batch to several files (GIF, MP4, WEBM, one extra format, PNG frames, TXT).

A run is all or nothing: each file appears under its final name only when complete, and if any format
fails (ffmpeg error, interrupt) the files this run already finished are removed too, so the output folder
never holds half a result. An alpha channel (a MASK input, or an RGBA batch) goes into every format that can
store one; a bit depth above 8 into every format whose codec allows it; what a format could not keep is said
in the run's notes. With `preview_only` the same files go to ComfyUI's temp folder instead of the output
folder. A poster frame (the first frame as PNG, in the temp folder) is always written, for previews that can
show no video.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ..host import folders
from . import ffmpeg_writer, frames, gif_writer, image_files, webp_writer
from .output_paths import OutputSlot, atomic_file, reserve_slot
from .video_formats import EXTRA_FORMATS, FORMATS, PRESETS, Format, Layout

log = logging.getLogger(__name__)

MIME = {"gif": "image/gif", "png": "image/png", "txt": "text/plain",
        **{key: fmt.ui_format for key, fmt in FORMATS.items()}}
BIT_DEPTHS = (8, 10)
TOGGLED_FORMATS = ("mp4", "webm")
"""The formats with a save_* switch; they share the `crf` input, the extra format has `extra_crf`."""


@dataclass(frozen=True)
class CombineOptions:
    """Everything Video Combine lets a user choose; defaults match the node's."""

    fps: float = 8.0
    save_gif: bool = True
    save_mp4: bool = True
    save_webm: bool = False
    save_png: bool = False
    save_txt: bool = False
    loop_count: int = 0
    reverse: bool = False
    remove_head: bool = False
    remove_tail: bool = False
    gif_dither: str = "floyd_steinberg"
    gif_optimize: bool = True
    gifsicle_optimize: int = 0
    gifsicle_lossy: int = 0
    crf: int = 19
    preset: str = "medium"
    extra_format: str = "none"
    bit_depth: int = 8
    extra_crf: int = -1
    webp_quality: int = 90
    preview_only: bool = False


@dataclass(frozen=True)
class SavedFile:
    path: str
    filename: str
    subfolder: str
    kind: str
    """gif, png, txt or a key of video_formats.FORMATS."""
    folder_type: str = "output"
    """ComfyUI's name of the folder it is in: output, or temp (preview_only, poster frame)."""
    layout: Layout | None = None
    """What a video or animation stores (bit depth, alpha); None for GIF, PNG and TXT."""

    @property
    def mime(self) -> str:
        return MIME[self.kind]


@dataclass
class CombineResult:
    files: list[SavedFile] = field(default_factory=list)
    order: list[int] = field(default_factory=list)
    width: int = 0
    height: int = 0
    notes: list[str] = field(default_factory=list)
    poster: SavedFile | None = None
    has_alpha: bool = False

    @property
    def frame_count(self) -> int:
        return len(self.order)

    def first(self, *kinds: str) -> SavedFile | None:
        """The first file of the earliest-listed kind present, e.g. first("mp4", "webm")."""
        for kind in kinds:
            for saved in self.files:
                if saved.kind == kind:
                    return saved
        return None


def _video_formats(options: CombineOptions) -> list[Format]:
    """The ffmpeg/Pillow formats this run writes, in write order."""
    wanted = {"mp4": options.save_mp4, "webm": options.save_webm}
    chosen = [FORMATS[key] for key in TOGGLED_FORMATS if wanted[key]]
    if options.extra_format != "none":
        chosen.append(FORMATS[options.extra_format])
    return chosen


def validate(images: torch.Tensor, options: CombineOptions, node: str) -> None:
    if getattr(images, "ndim", None) != 4:  # a tensor, or latent_stream.DecodedFrames
        raise ValueError(f"{node}: images must be an IMAGE batch [frames, height, width, channels]")
    if images.shape[0] == 0:
        raise ValueError(f"{node}: images is an empty batch (0 frames); connect a node that outputs frames")
    if images.shape[-1] not in (1, 3, 4):
        raise ValueError(f"{node}: images has {images.shape[-1]} channels; expected RGB (3), grey (1) or RGBA (4)")
    if not math.isfinite(options.fps) or options.fps <= 0:
        raise ValueError(f"{node}: fps is {options.fps}; set a frame rate above 0, e.g. 8")
    if options.extra_format not in EXTRA_FORMATS:
        raise ValueError(f"{node}: extra_format {options.extra_format!r} is not one of {', '.join(EXTRA_FORMATS)}")
    if not any((options.save_gif, options.save_mp4, options.save_webm, options.save_png, options.save_txt,
                options.extra_format != "none")):
        raise ValueError(f"{node}: every save_* switch is off and extra_format is none; turn on at least one "
                         "format")
    if options.loop_count < 0:
        raise ValueError(f"{node}: loop_count is {options.loop_count}; use 0 for endless or a positive count")
    if options.gif_dither not in gif_writer.DITHER:
        raise ValueError(f"{node}: gif_dither {options.gif_dither!r} is not one of {', '.join(gif_writer.DITHER)}")
    if options.preset not in PRESETS:
        raise ValueError(f"{node}: preset {options.preset!r} is not one of {', '.join(PRESETS)}")
    if options.bit_depth not in BIT_DEPTHS:
        raise ValueError(f"{node}: bit_depth {options.bit_depth} is not one of 8, 10")
    for fmt in _video_formats(options):
        if fmt.crf_range is None:
            continue
        low, high = fmt.crf_range
        if fmt.key in TOGGLED_FORMATS and not low <= options.crf <= high:
            raise ValueError(f"{node}: crf {options.crf} is outside {fmt.label}'s range {low}-{high} (lower is "
                             "better)")
        if fmt.key not in TOGGLED_FORMATS and options.extra_crf != -1 and not low <= options.extra_crf <= high:
            raise ValueError(f"{node}: extra_crf {options.extra_crf} is outside {fmt.label}'s range {low}-{high}; "
                             f"use -1 for its default ({fmt.default_crf}) or a value in the range (lower is better)")
    if not 0 <= options.webp_quality <= 100:
        raise ValueError(f"{node}: webp_quality is {options.webp_quality}; use 0-100 (100 is lossless)")


def combine(images: torch.Tensor, prefix: str, options: CombineOptions, *, prompt: dict | None = None,
            extra_pnginfo: dict | None = None, audio: dict | None = None, mask: torch.Tensor | None = None,
            check_interrupt: Callable[[], None] | None = None, output_dir: str | None = None,
            node: str) -> CombineResult:
    """Write every selected format for `images` under `prefix`; return the files in write order."""
    validate(images, options, node)
    height, width = int(images.shape[1]), int(images.shape[2])
    alpha = frames.alpha_of(images, mask, node)
    folder_type = "temp" if options.preview_only else "output"
    if options.preview_only:
        output_dir = folders.temp_dir()
    slot = reserve_slot(prefix, width, height, output_dir, node)
    order = frames.frame_order(images.shape[0], options.reverse, options.remove_head, options.remove_tail)
    metadata = dict(extra_pnginfo or {})
    if prompt is not None:
        metadata["prompt"] = prompt
    result = CombineResult(order=order, width=width, height=height, has_alpha=alpha is not None)
    try:
        _write_all(images, alpha, order, slot, folder_type, options, metadata, prompt, audio, check_interrupt, node,
                   result)
        result.poster = _write_poster(images, alpha, order, slot, check_interrupt)
    except BaseException:
        for saved in result.files:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(saved.path)
        raise
    log.info("%s: wrote %d frames at %g fps: %s", node, len(order), options.fps,
             ", ".join(saved.filename for saved in result.files if saved.kind != "png") or "PNG frames")
    return result


def _write_all(images, alpha, order, slot: OutputSlot, folder_type: str, options: CombineOptions, metadata: dict,
               prompt, audio, check_interrupt, node: str, result: CombineResult) -> None:
    def add(kind: str, path: str, layout: Layout | None = None) -> None:
        result.files.append(SavedFile(path, os.path.basename(path), slot.subfolder, kind, folder_type, layout))

    if options.save_gif:
        path = slot.path("gif")
        with atomic_file(path) as temp:
            gif_writer.write_gif(frames.iter_frames(images, order, check_interrupt), temp, options.fps,
                                 loop_count=options.loop_count, dither=options.gif_dither,
                                 optimize=options.gif_optimize, metadata=metadata)
            if options.gifsicle_optimize or options.gifsicle_lossy:
                shrink = gif_writer.shrink_with_gifsicle(temp, options.gifsicle_optimize, options.gifsicle_lossy, node)
                result.notes.append(shrink.note)
        add("gif", path)

    formats = _video_formats(options)
    duration = len(order) / options.fps
    fitted_audio = None
    if audio is not None and any(fmt.audio_args for fmt in formats):
        fitted_audio = ffmpeg_writer.fit_audio(audio["waveform"], audio["sample_rate"], duration)
    spec = ffmpeg_writer.VideoSpec(result.width, result.height, options.fps)
    for fmt in formats:
        layout = fmt.layout(options.bit_depth, alpha is not None)
        # Extra formats that share an extension with a toggled one get a suffix: clip_00001_h265.mp4.
        path = slot.path(fmt.ext, "" if fmt.key in (*TOGGLED_FORMATS, "webp") else fmt.key.split("-")[0])
        chunks = frames.iter_chunks(images, order, check_interrupt=check_interrupt,
                                    alpha=alpha if layout.alpha else None, sixteen_bit=layout.depth > 8)
        with atomic_file(path) as temp:
            if fmt.key == "webp":
                webp_writer.write_webp((frame for chunk in chunks for frame in chunk), len(order), temp, options.fps,
                                       loop_count=options.loop_count, quality=options.webp_quality,
                                       metadata=metadata)
            else:
                crf = options.crf if fmt.key in TOGGLED_FORMATS else options.extra_crf
                ffmpeg_writer.encode(chunks, temp, spec, fmt, layout=layout, crf=fmt.default_crf if crf < 0 else crf,
                                     preset=options.preset, metadata=metadata, audio=fitted_audio, node=node)
        padded = ffmpeg_writer.padded_size(fmt, result.width, result.height)
        if padded != (result.width, result.height):
            result.notes.append(f"{fmt.label} padded from {result.width}x{result.height} to {padded[0]}x{padded[1]} "
                                f"(4:2:0 needs even sizes)")
        add(fmt.key, path, layout)
    result.notes.extend(_layout_notes(formats, options, alpha is not None, audio is not None))

    if options.save_png:
        info = image_files.png_info(metadata)
        for position, frame in enumerate(frames.iter_frames(images, order, check_interrupt, alpha)):
            path = slot.path("png", f"{position:05}")
            with atomic_file(path) as temp:
                image_files.write_png(frame, temp, info)
            add("png", path)

    if options.save_txt:
        facts = {"frames": len(order), "fps": options.fps, "size": f"{result.width}x{result.height}",
                 "loop_count": options.loop_count, "reverse": options.reverse,
                 "files": ", ".join(saved.filename for saved in result.files if saved.kind != "png")}
        path = slot.path("txt")
        with atomic_file(path) as temp:
            image_files.write_text(image_files.generation_info(prompt, facts), temp)
        add("txt", path)


def _layout_notes(formats: list[Format], options: CombineOptions, has_alpha: bool, has_audio: bool) -> list[str]:
    """What the chosen formats could not keep, in words for the node's info text."""
    notes = []
    if has_alpha:
        dropped = [fmt.label for fmt in formats if not fmt.alpha_capable] + (["GIF"] if options.save_gif else [])
        if dropped:
            notes.append(f"alpha not stored in {', '.join(dropped)}: use WEBM, ProRes 4444, FFV1, WEBP or PNG "
                         "frames for transparency")
        if options.bit_depth > 8 and any(fmt.key == "webm" for fmt in formats):
            notes.append("VP9 WEBM with alpha is 8-bit")
    if options.bit_depth > 8:
        eight = [fmt.label for fmt in formats if fmt.layout(options.bit_depth, has_alpha).depth == 8]
        if eight:
            notes.append(f"{', '.join(eight)} written at 8 bits (no 10-bit there)")
    if options.extra_format in ("prores-4444-mov", "ffv1-mkv", "webp") and options.extra_crf != -1:
        notes.append(f"extra_crf does not apply to {FORMATS[options.extra_format].label}")
    if has_audio and options.extra_format == "webp":
        notes.append("WEBP has no sound track; audio goes into the video formats only")
    return notes


def _write_poster(images, alpha, order, slot: OutputSlot, check_interrupt) -> SavedFile:
    """The first output frame as a PNG in the temp folder: the preview's fallback when no video plays."""
    temp_dir = folders.temp_dir()
    os.makedirs(temp_dir, exist_ok=True)
    name = f"{slot.name}_{slot.counter:05}_poster_{uuid.uuid4().hex[:8]}.png"
    path = os.path.join(temp_dir, name)
    frame = next(frames.iter_frames(images, order[:1], check_interrupt, alpha))
    with atomic_file(path) as temp:
        image_files.write_png(frame, temp, None)
    return SavedFile(path, name, "", "png", "temp")
