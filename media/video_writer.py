"""Video Combine's core: one IMAGE batch to several files (GIF, MP4, WEBM, PNG frames, TXT) in one run.

A run is all or nothing: each file appears under its final name only when complete, and if any format
fails (ffmpeg error, interrupt) the files this run already finished are removed too, so the output folder
never holds half a result.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from . import ffmpeg_writer, frames, gif_writer, image_files
from .output_paths import OutputSlot, atomic_file, reserve_slot

log = logging.getLogger(__name__)

MIME = {"gif": "image/gif", "mp4": "video/h264-mp4", "webm": "video/webm", "png": "image/png",
        "txt": "text/plain"}


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


@dataclass(frozen=True)
class SavedFile:
    path: str
    filename: str
    subfolder: str
    kind: str

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


def validate(images: torch.Tensor, options: CombineOptions, node: str) -> None:
    if getattr(images, "ndim", None) != 4:  # a tensor, or latent_stream.DecodedFrames
        raise ValueError(f"{node}: images must be an IMAGE batch [frames, height, width, channels]")
    if images.shape[0] == 0:
        raise ValueError(f"{node}: images is an empty batch (0 frames); connect a node that outputs frames")
    if images.shape[-1] not in (1, 3, 4):
        raise ValueError(f"{node}: images has {images.shape[-1]} channels; expected RGB (3), grey (1) or RGBA (4)")
    if not math.isfinite(options.fps) or options.fps <= 0:
        raise ValueError(f"{node}: fps is {options.fps}; set a frame rate above 0, e.g. 8")
    if not any((options.save_gif, options.save_mp4, options.save_webm, options.save_png, options.save_txt)):
        raise ValueError(f"{node}: every save_* switch is off; turn on at least one format")
    if options.loop_count < 0:
        raise ValueError(f"{node}: loop_count is {options.loop_count}; use 0 for endless or a positive count")
    if options.gif_dither not in gif_writer.DITHER:
        raise ValueError(f"{node}: gif_dither {options.gif_dither!r} is not one of {', '.join(gif_writer.DITHER)}")
    if options.preset not in ffmpeg_writer.PRESETS:
        raise ValueError(f"{node}: preset {options.preset!r} is not one of {', '.join(ffmpeg_writer.PRESETS)}")


def combine(images: torch.Tensor, prefix: str, options: CombineOptions, *, prompt: dict | None = None,
            extra_pnginfo: dict | None = None, audio: dict | None = None,
            check_interrupt: Callable[[], None] | None = None, output_dir: str | None = None,
            node: str = "Video Combine") -> CombineResult:
    """Write every selected format for `images` under `prefix`; return the files in write order."""
    validate(images, options, node)
    height, width = int(images.shape[1]), int(images.shape[2])
    slot = reserve_slot(prefix, width, height, output_dir, node)
    order = frames.frame_order(images.shape[0], options.reverse, options.remove_head, options.remove_tail)
    metadata = dict(extra_pnginfo or {})
    if prompt is not None:
        metadata["prompt"] = prompt
    result = CombineResult(order=order, width=width, height=height)
    try:
        _write_all(images, order, slot, options, metadata, prompt, audio, check_interrupt, node, result)
    except BaseException:
        for saved in result.files:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(saved.path)
        raise
    log.info("%s: wrote %d frames at %g fps: %s", node, len(order), options.fps,
             ", ".join(saved.filename for saved in result.files if saved.kind != "png") or "PNG frames")
    return result


def _write_all(images, order, slot: OutputSlot, options: CombineOptions, metadata: dict, prompt, audio,
               check_interrupt, node: str, result: CombineResult) -> None:
    def add(kind: str, path: str) -> None:
        result.files.append(SavedFile(path, os.path.basename(path), slot.subfolder, kind))

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

    duration = len(order) / options.fps
    fitted_audio = None
    if audio is not None and (options.save_mp4 or options.save_webm):
        fitted_audio = ffmpeg_writer.fit_audio(audio["waveform"], audio["sample_rate"], duration)
    spec = ffmpeg_writer.VideoSpec(result.width, result.height, options.fps)
    for container, wanted in (("mp4", options.save_mp4), ("webm", options.save_webm)):
        if not wanted:
            continue
        path = slot.path(container)
        with atomic_file(path) as temp:
            ffmpeg_writer.encode(frames.iter_chunks(images, order, check_interrupt=check_interrupt), temp, spec,
                                 container, crf=options.crf, preset=options.preset, metadata=metadata,
                                 audio=fitted_audio, node=node)
        if ffmpeg_writer.needs_even_size(container) and (result.width % 2 or result.height % 2):
            result.notes.append(f"{container.upper()} padded from {result.width}x{result.height} to "
                                f"{result.width + result.width % 2}x{result.height + result.height % 2} "
                                f"(yuv420p needs even sizes)")
        add(container, path)

    if options.save_png:
        info = image_files.png_info(metadata)
        for position, frame in enumerate(frames.iter_frames(images, order, check_interrupt)):
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
