"""Video and frame-folder inputs: Load Video (upload or path) with Video Info, and Load Image Sequence (with
inpainting masks)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from comfy_api.latest import io

from ..host import execution, folders
from ..media import core_video, image_sequence, latent_stream, paths, read_errors, video_reader
from .common import CATEGORY, display_name, node_id, require_finite, search_aliases, validate_floats
from .types import VideoInfoType


def _video_files() -> list[str]:
    input_dir = folders.input_dir()
    names = [
        name for name in os.listdir(input_dir)
        if os.path.isfile(os.path.join(input_dir, name)) and name.lower().endswith(video_reader.VIDEO_EXTENSIONS)
    ]
    return sorted(names)


def _option_inputs() -> list[io.Input]:
    return [
        io.Int.Input(
            "frame_load_cap", default=0, min=0, max=100000,
            tooltip="Load at most this many frames; 0 loads them all.",
        ),
        io.Int.Input(
            "skip_first_frames", default=0, min=0, max=100000,
            tooltip="Frames to skip at the start (counted after force_rate).",
        ),
        io.Int.Input(
            "select_every_nth", default=1, min=1, max=1000,
            tooltip="Keep every nth frame (1 keeps all); the fps output is divided to match.",
        ),
        io.Float.Input(
            "force_rate", default=0.0, min=0.0, max=240.0, step=0.01,
            tooltip="Resample the video to this frame rate by dropping or repeating frames; 0 keeps the source's.",
        ),
        io.Int.Input(
            "custom_width", default=0, min=0, max=8192, step=8,
            tooltip="Resize frames to this width; 0 keeps the source's (or follows custom_height's aspect).",
        ),
        io.Int.Input(
            "custom_height", default=0, min=0, max=8192, step=8,
            tooltip="Resize frames to this height; 0 keeps the source's (or follows custom_width's aspect).",
        ),
        io.Vae.Input(
            "vae", optional=True,
            tooltip="Connect a VAE to load the video as latents, encoded a chunk at a time: memory holds the "
            "latents, never the frames. The images output is then not produced.",
        ),
    ]


def _video_outputs() -> list[io.Output]:
    return [
        io.Image.Output("images", display_name="images",
                        tooltip="The loaded frames (with a vae connected: not produced, see latents)."),
        io.Int.Output("frame_count", display_name="frame_count",
                      tooltip="How many frames were loaded: feed it to frames/batch size."),
        io.Float.Output("fps", display_name="fps",
                        tooltip="Frame rate of the loaded frames: feed it to Video Combine."),
        io.Audio.Output("audio", display_name="audio",
                        tooltip="The audio of the loaded span; None when the file has no audio track."),
        io.Latent.Output("latents", display_name="latents",
                         tooltip="With a vae connected: the frames as latents, for KSampler or Video Combine's "
                                 "latents input."),
        # Its id differs from Load Video's `video` input: hosts before 0.33 refuse an id used for both.
        io.Video.Output("loaded_video", display_name="video",
                        tooltip="The loaded frames, audio and fps as a VIDEO for ComfyUI's video nodes (Save Video, "
                                "Get Video Components); it keeps the source's bit depth. With a vae connected: not "
                                "produced."),
        VideoInfoType.Output("video_info", display_name="video_info",
                             tooltip="Facts of the source file and of what was loaded, for Video Info."),
    ]


def _load(node: str, path: Path, frame_load_cap: int, skip_first_frames: int, select_every_nth: int,
          force_rate: float, custom_width: int, custom_height: int, vae=None) -> io.NodeOutput:
    options = video_reader.VideoOptions(
        frame_load_cap, skip_first_frames, select_every_nth, force_rate, width=custom_width, height=custom_height
    )
    try:
        return _load_latents(node, path, options, vae) if vae is not None else _load_images(node, path, options)
    except (ValueError, FileNotFoundError) as err:
        raise _named(node, err) from err


def _named(node: str, err: Exception) -> Exception:
    """The error with the node's name in front. Reader errors keep their type (they take one message); any
    other ValueError becomes a plain one, since a library's subclass may need other arguments to be built."""
    kind = type(err) if isinstance(err, (read_errors.MediaReadError, FileNotFoundError)) else ValueError
    return kind(f"{node}: {err}")


def _load_images(node: str, path: Path, options: video_reader.VideoOptions) -> io.NodeOutput:
    """The output not produced carries ComfyUI's ExecutionBlocker: a node wired to it stops with this message."""
    video = video_reader.read_video(path, options)
    no_latents = execution.blocked_output(f"{node}: the latents output needs a VAE: connect one to its vae input")
    as_video = core_video.video_from_frames(video.images, video.fps, video.audio, video.bit_depth)
    return io.NodeOutput(video.images, video.frame_count, video.fps, video.audio, no_latents, as_video, video.info)


def _load_latents(node: str, path: Path, options: video_reader.VideoOptions, vae) -> io.NodeOutput:
    stream = video_reader.open_stream(path, options)
    latents = latent_stream.encode_stream(stream, vae, check_interrupt=execution.check_interrupt,
                                          progress=execution.progress(stream.frame_count))
    no_images = execution.blocked_output(f"{node}: a vae is connected, so the video loads as latents only: use the "
                                         f"latents output, or disconnect the vae to get images or a video")
    frames = latents["samples"].shape[0]
    return io.NodeOutput(no_images, frames, stream.fps, stream.audio(), latents, no_images,
                         stream.info.with_loaded(frames))


def _changed(value: str, kind: str = "file"):
    """Re-run when the file (or a file in the folder) changes; a refused or missing path always re-runs,
    so that execute reports the error."""
    try:
        path = paths.resolve_input_path(value, "path", kind)
    except (OSError, ValueError):
        return float("nan")
    files = [path] if kind == "file" else sorted(p for p in path.rglob("*") if p.is_file())
    return tuple((str(p), p.stat().st_mtime) for p in files)


class LoadVideo(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=node_id("LoadVideo"),
            **search_aliases("Load Video", "Load Video (Upload)"),
            display_name=display_name("Load Video"),
            category=CATEGORY,
            description="Loads a video (MP4, WEBM, GIF, MOV, MKV) from ComfyUI's input folder as frames, "
            "with its frame count, fps and audio, and as a VIDEO for ComfyUI's video nodes.",
            inputs=[
                io.Combo.Input(
                    "video", options=_video_files(), upload=io.UploadType.video,
                    tooltip="A video in ComfyUI's input folder; upload one with the button.",
                ),
                *_option_inputs(),
            ],
            outputs=_video_outputs(),
        )

    @classmethod
    def validate_inputs(cls, force_rate=None) -> bool | str:
        return validate_floats(cls, force_rate=force_rate)

    @classmethod
    def execute(cls, video: str, **options) -> io.NodeOutput:
        require_finite(cls, force_rate=options["force_rate"])
        return _load("Load Video", paths.resolve_input_path(video, "Load Video: video"), **options)

    @classmethod
    def fingerprint_inputs(cls, video: str, **options):
        return _changed(video)


class LoadVideoPath(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=node_id("LoadVideoPath"),
            **search_aliases("Load Video", "Load Video (Path)"),
            display_name=display_name("Load Video (Path)"),
            category=CATEGORY,
            description="Loads a video by path: relative paths are inside ComfyUI's input folder; other folders "
            f"only if the server's operator allows them in the {paths.ALLOW_ENV} environment variable.",
            inputs=[
                io.String.Input(
                    "video_path", default="",
                    tooltip=f"Video file, relative to ComfyUI's input folder, or absolute inside a folder allowed "
                    f"by {paths.ALLOW_ENV}.",
                ),
                *_option_inputs(),
            ],
            outputs=_video_outputs(),
        )

    @classmethod
    def validate_inputs(cls, force_rate=None) -> bool | str:
        return validate_floats(cls, force_rate=force_rate)

    @classmethod
    def execute(cls, video_path: str, **options) -> io.NodeOutput:
        require_finite(cls, force_rate=options["force_rate"])
        path = paths.resolve_input_path(video_path, "Load Video (Path): video_path")
        return _load("Load Video (Path)", path, **options)

    @classmethod
    def fingerprint_inputs(cls, video_path: str, **options):
        return _changed(video_path)


class LoadImageSequence(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=node_id("LoadImageSequence"),
            **search_aliases("Load Images", "Load Images (Path)", "image sequence"),
            display_name=display_name("Load Image Sequence"),
            category=CATEGORY,
            description="Loads a folder of frames in natural order, or a part of it (skip, every nth, cap). A folder "
            "with image/ and mask/ subfolders (the original extension's video-inpainting layout) also gives one mask "
            "per frame.",
            inputs=[
                io.String.Input(
                    "folder", default="",
                    tooltip=f"Folder of images, relative to ComfyUI's input folder, or absolute inside a folder "
                    f"allowed by {paths.ALLOW_ENV}.",
                ),
                # Optional: API prompts saved before these inputs existed name only the folder.
                io.Int.Input("frame_load_cap", default=0, min=0, max=100000, optional=True,
                             tooltip="Load at most this many frames (after skipping and selecting); 0 loads them "
                                     "all."),
                io.Int.Input("skip_first_frames", default=0, min=0, max=100000, optional=True,
                             tooltip="Frames to skip at the start of the sorted folder."),
                io.Int.Input("select_every_nth", default=1, min=1, max=1000, optional=True,
                             tooltip="Keep every nth frame after the skipped ones (1 keeps all); masks follow."),
            ],
            outputs=[
                io.Image.Output("images", display_name="images",
                                tooltip="The frames, sorted naturally (frame2 before frame10)."),
                io.Mask.Output("masks", display_name="masks",
                               tooltip="One mask per frame from mask/ (white = repaint); without mask/, 1 - each "
                                       "frame's alpha (0 for frames without transparency), as Load Image makes it."),
                io.Int.Output("count", display_name="count", tooltip="How many frames were loaded."),
            ],
        )

    @classmethod
    def execute(cls, folder: str, frame_load_cap: int = 0, skip_first_frames: int = 0,
                select_every_nth: int = 1) -> io.NodeOutput:
        where = "Load Image Sequence: folder"
        path = paths.resolve_input_path(folder, where, kind="folder")
        try:
            selection = image_sequence.Selection(skip_first_frames, select_every_nth, frame_load_cap)
            images, masks = image_sequence.load_image_sequence(path, lambda p: paths.check_allowed(p, where),
                                                               selection)
        except ValueError as err:
            raise _named(where, err) from err
        return io.NodeOutput(images, masks, images.shape[0])

    @classmethod
    def fingerprint_inputs(cls, folder: str, **selection):
        return _changed(folder, kind="folder")


_INFO_FIELDS = tuple(field.name for field in dataclasses.fields(video_reader.VideoInfo))


class VideoInfo(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        outputs = [(io.Float if name.endswith(("fps", "duration")) else io.Int).Output(
            name, display_name=name, tooltip=_INFO_TOOLTIPS[name.split("_", 1)[1]].format(
                "the file" if name.startswith("source") else "what was loaded")) for name in _INFO_FIELDS]
        return io.Schema(
            node_id=node_id("VideoInfo"),
            **search_aliases("Video Info", "Video Info (Source)", "Video Info (Loaded)", "fps"),
            display_name=display_name("Video Info"),
            category=CATEGORY,
            description="The source file's fps, frame count, duration and size, and the same of what Load Video "
                        "loaded (after force_rate, skipping, selecting and resizing).",
            inputs=[VideoInfoType.Input("video_info", tooltip="Load Video's video_info output.")],
            outputs=outputs,
        )

    @classmethod
    def execute(cls, video_info) -> io.NodeOutput:
        if not isinstance(video_info, video_reader.VideoInfo):
            raise ValueError(f"Video Info: video_info must come from this pack's Load Video, not "
                             f"{type(video_info).__name__}; connect Load Video's video_info output")
        return io.NodeOutput(*(getattr(video_info, name) for name in _INFO_FIELDS))


_INFO_TOOLTIPS = {"fps": "Frame rate of {}.", "frame_count": "Frames of {}.", "duration": "Seconds of {}.",
                  "width": "Frame width of {}, in pixels.", "height": "Frame height of {}, in pixels."}

NODES = [LoadVideo, LoadVideoPath, LoadImageSequence, VideoInfo]
