"""Video Combine: an IMAGE batch to GIF / MP4 / WEBM / an extra format / PNG frames / TXT, previewed on the node.

The save_* switches and every widget saved workflows know keep their places; the inputs added since (extra
format, bit depth, its CRF, WEBP quality, preview only) come after them, because the editor restores widget
values by position.
"""

from __future__ import annotations

from comfy_api.latest import io

from ..host import execution
from ..media import core_video, frames, gif_writer, latent_stream, preview_payload
from ..media.read_errors import MediaReadError
from ..media.video_formats import EXTRA_FORMATS, PRESETS
from ..media.video_writer import CombineOptions, CombineResult, combine
from .common import CATEGORY, advanced, display_name, node_id, require_finite, search_aliases, validate_floats

NAME = "Video Combine"
VIDEO_OUTPUT_KINDS = ("mp4", "webm", "h265-mp4", "av1-mp4", "prores-4444-mov", "ffv1-mkv")


class VideoCombine(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=node_id("VideoCombine"),
            **search_aliases("Video Combine", "Save Video", "AnimateDiff Combine", "GIF", "MP4"),
            display_name=display_name(NAME),
            category=CATEGORY,
            description="Saves an image batch (or latents, decoded a chunk at a time) as GIF, MP4 (H.264), WEBM "
                        "(VP9), one extra format (H.265, AV1, ProRes 4444, animated WEBP, lossless FFV1), PNG frames "
                        "and a text file of the settings, in ComfyUI's output folder (or its temp folder for a "
                        "preview), and plays the result on the node. The workflow is embedded in every file; "
                        "dropping the MP4, WEBM or a PNG on the editor restores the graph (the editor does not read "
                        "GIFs). A mask becomes the alpha channel of the formats that have one.",
            inputs=[
                io.Image.Input("images", optional=True,
                               tooltip="The frames, in order. Or connect latents and a vae, or a video, instead."),
                io.Float.Input("fps", default=8.0, min=0.01, max=240.0, step=0.5,
                               tooltip="Frames per second of every output. GIF stores delays in 10 ms steps, so "
                                       "its rate is rounded (8 fps plays at 8.33)."),
                io.String.Input("filename_prefix", default="AnimateFlow",
                                tooltip="File name start inside the output folder; may contain subfolders "
                                        "('videos/run'). Absolute paths and '..' are refused."),
                io.Boolean.Input("save_gif", default=True, tooltip="Write an animated GIF (Pillow)."),
                io.Boolean.Input("save_mp4", default=True, tooltip="Write an H.264 MP4 (yuv420p; odd sizes are "
                                                                    "padded to even with black)."),
                io.Boolean.Input("save_webm", optional=True, default=False, tooltip="Write a VP9 WEBM."),
                io.Boolean.Input("save_png", optional=True, default=False,
                                 tooltip="Write every frame as a PNG with the workflow in its text chunks."),
                io.Boolean.Input("save_txt", optional=True, default=False,
                                 tooltip="Write a text file: frame count, fps, files and each node's settings."),
                io.Int.Input("loop_count", optional=True, default=0, min=0, max=1000,
                             tooltip="How many times the GIF repeats; 0 loops forever."),
                io.Boolean.Input("reverse", optional=True, default=False,
                                 tooltip="Boomerang: append the frames backwards after the forward run."),
                io.Boolean.Input("remove_head", optional=True, default=False,
                                 tooltip="With reverse: drop the first reversed frame (it repeats the last frame).",
                                 **advanced()),
                io.Boolean.Input("remove_tail", optional=True, default=False,
                                 tooltip="With reverse: drop the last reversed frame (it repeats the first frame "
                                         "when the video loops).", **advanced()),
                io.Combo.Input("gif_dither", optional=True, options=list(gif_writer.DITHER), default="floyd_steinberg",
                               tooltip="How GIF colours are reduced to 256 per frame: floyd_steinberg trades "
                                       "banding for fine noise; none keeps flat areas flat.", **advanced()),
                io.Boolean.Input("gif_optimize", optional=True, default=True,
                                 tooltip="Let Pillow shrink the GIF's palettes (smaller file, same picture).",
                                 **advanced()),
                io.Int.Input("gifsicle_optimize", optional=True, default=0, min=0, max=3,
                             tooltip="Run gifsicle -O1..-O3 on the GIF when gifsicle is installed (0 = off). "
                                     "Sizes before and after are reported on the node.", **advanced()),
                io.Int.Input("gifsicle_lossy", optional=True, default=0, min=0, max=200,
                             tooltip="gifsicle --lossy level (0 = lossless); higher is smaller and noisier.",
                             **advanced()),
                io.Int.Input("crf", optional=True, default=19, min=0, max=63,
                             tooltip="Quality of MP4/WEBM: lower is better and larger (H.264 0-51, VP9 0-63).",
                             **advanced()),
                io.Combo.Input("preset", optional=True, options=list(PRESETS), default="medium",
                               tooltip="Encoder speed against file size at the same quality (x264 / x265 presets; "
                                       "mapped to VP9's cpu-used and SVT-AV1's preset).", **advanced()),
                io.Combo.Input("extra_format", optional=True, options=list(EXTRA_FORMATS), default="none",
                               tooltip="One more file: H.265 MP4 (smaller than H.264), AV1 MP4 (smallest, slow), "
                                       "ProRes 4444 MOV (editing, keeps alpha), animated WEBP (keeps alpha), "
                                       "FFV1 MKV (lossless archive, keeps alpha)."),
                io.Combo.Input("bit_depth", optional=True, options=["8", "10"], default="8",
                               tooltip="10 bits per channel where the codec allows it (VP9 WEBM, H.265, AV1, "
                                       "FFV1; ProRes is always 10-bit): smoother gradients. H.264 MP4, GIF and "
                                       "WEBP stay 8-bit; browsers may not play 10-bit H.265.", **advanced()),
                io.Int.Input("extra_crf", optional=True, default=-1, min=-1, max=63,
                             tooltip="Quality of the extra format, lower is better: H.265 0-51, AV1 0-63; -1 "
                                     "uses the format's default (H.265 28, AV1 35). ProRes, FFV1 and WEBP "
                                     "ignore it.", **advanced()),
                io.Int.Input("webp_quality", optional=True, default=90, min=0, max=100,
                             tooltip="Quality of the animated WEBP, higher is better; 100 writes it lossless.",
                             **advanced()),
                io.Boolean.Input("preview_only", optional=True, default=False,
                                 tooltip="Write the files to ComfyUI's temp folder (cleared when ComfyUI starts) "
                                         "instead of the output folder: a preview that keeps nothing."),
                io.Audio.Input("audio", optional=True,
                               tooltip="Sound muxed into the video files, trimmed or padded with silence to the "
                                       "video's length."),
                io.Mask.Input("mask", optional=True,
                              tooltip="Alpha channel (1 = opaque), one per frame or one for all: kept by WEBM, "
                                      "ProRes 4444, FFV1, WEBP and PNG frames. Without it an RGBA batch's own "
                                      "alpha is used."),
                io.Latent.Input("latents", optional=True,
                                tooltip="Instead of images: latents (e.g. KSampler's output), decoded by the vae a "
                                        "chunk at a time while the files are written, so a long video never sits "
                                        "in memory as images. Each format written decodes once more."),
                io.Vae.Input("vae", optional=True, tooltip="The VAE that decodes latents (the checkpoint's)."),
                # Its id differs from the `video` output: hosts before 0.33 refuse an id used for both.
                io.Video.Input("input_video", display_name="video", optional=True,
                               tooltip="Instead of images: a VIDEO from ComfyUI's video nodes (Load Video, Create "
                                       "Video). Its own frame rate, audio and alpha are used (fps is ignored; a "
                                       "connected audio or mask wins). HDR videos are refused: these files are SDR."),
            ],
            outputs=[
                io.String.Output("file_paths", display_name="file_paths",
                                 tooltip="Full paths of the written files, one per line."),
                io.Video.Output("video", display_name="video",
                                tooltip="The first video written (MP4, else WEBM, else the extra format) as a VIDEO "
                                        "for ComfyUI's video nodes; the frames themselves when none was written "
                                        "(from latents: the GIF if written)."),
            ],
            hidden=[io.Hidden.prompt, io.Hidden.extra_pnginfo],
            is_output_node=True,
        )

    @classmethod
    def validate_inputs(cls, fps=None) -> bool | str:
        return validate_floats(cls, fps=fps)

    @classmethod
    def execute(cls, images=None, fps: float = 8.0, filename_prefix: str = "AnimateFlow", save_gif: bool = True,
                save_mp4: bool = True, save_webm: bool = False, save_png: bool = False, save_txt: bool = False,
                loop_count: int = 0, reverse: bool = False, remove_head: bool = False, remove_tail: bool = False,
                gif_dither: str = "floyd_steinberg", gif_optimize: bool = True, gifsicle_optimize: int = 0,
                gifsicle_lossy: int = 0, crf: int = 19, preset: str = "medium", extra_format: str = "none",
                bit_depth: str = "8", extra_crf: int = -1, webp_quality: int = 90, preview_only: bool = False,
                audio=None, mask=None, latents=None, vae=None, input_video=None) -> io.NodeOutput:
        require_finite(cls, fps=fps)
        _require_one_source(images=images, latents=latents, video=input_video)
        notes = []
        if input_video is not None:
            try:
                given = core_video.frames_of(input_video)
            except (core_video.CoreVideoError, MediaReadError) as err:
                raise type(err)(f"{NAME}: {err}") from err
            images, fps = given.images, given.fps
            audio = audio if audio is not None else given.audio
            mask = mask if mask is not None else given.alpha
            notes = _video_notes(given, int(bit_depth))
        options = CombineOptions(fps=fps, save_gif=save_gif, save_mp4=save_mp4, save_webm=save_webm,
                                 save_png=save_png, save_txt=save_txt, loop_count=loop_count, reverse=reverse,
                                 remove_head=remove_head, remove_tail=remove_tail, gif_dither=gif_dither,
                                 gif_optimize=gif_optimize, gifsicle_optimize=gifsicle_optimize,
                                 gifsicle_lossy=gifsicle_lossy, crf=crf, preset=preset, extra_format=extra_format,
                                 bit_depth=int(bit_depth), extra_crf=extra_crf, webp_quality=webp_quality,
                                 preview_only=preview_only)
        embed = not execution.metadata_disabled()
        images = latent_stream.combine_source(images, latents, vae, NAME, _progress_bar(latents))
        result = combine(images, filename_prefix, options,
                         prompt=cls.hidden.prompt if embed else None,
                         extra_pnginfo=cls.hidden.extra_pnginfo if embed else None, audio=audio, mask=mask,
                         check_interrupt=execution.check_interrupt, node=NAME)
        result.notes.extend(notes)
        if isinstance(images, latent_stream.DecodedFrames):
            result.notes.append(f"decoded from latents, {images.chunk} frames at a time "
                                f"({images.decoded_frames} frame decodes)")
        paths = "\n".join(saved.path for saved in result.files)
        video_out = _video_value(result, images, fps, audio, options.bit_depth)
        return io.NodeOutput(paths, video_out, ui=_ui(result, fps))


def _require_one_source(**sources) -> None:
    connected = [name for name, value in sources.items() if value is not None]
    if len(connected) > 1:
        listed = f"both {connected[0]} and {connected[1]}" if len(connected) == 2 else "images, latents and video"
        raise ValueError(f"{NAME}: {listed} are connected; connect exactly one of images, latents (with a vae) or "
                         "video")


def _video_notes(given: core_video.VideoFrames, bit_depth: int) -> list[str]:
    """What the info text says about a VIDEO input, in core's words (colour space, bit depth)."""
    notes = [f"from a VIDEO: {given.fps:g} fps, {given.color_space}, {given.bit_depth}-bit"]
    if given.bit_depth > bit_depth:
        notes.append(f"the video is {given.bit_depth}-bit but bit_depth is {bit_depth}: set bit_depth to "
                     f"{given.bit_depth} to keep it")
    return notes


def _progress_bar(latents):
    """Decoding progress for latents (restarts with each format written); None for images."""
    if latents is None:
        return None
    return execution.progress(1)


def _video_value(result: CombineResult, images, fps: float, audio, bit_depth: int):
    encoded = result.first(*VIDEO_OUTPUT_KINDS)
    decoded = isinstance(images, latent_stream.DecodedFrames)
    if encoded is None and decoded:
        encoded = result.first("gif")  # rather than decode every frame into memory for this output
    if encoded is not None:
        return core_video.video_from_file(encoded.path)
    in_order = images.reorder(result.order) if decoded else frames.reorder(images, result.order)
    return core_video.video_from_frames(in_order, fps, audio, bit_depth)


def _ui(result: CombineResult, fps: float) -> dict:
    """`animateflow` lists what a browser may show (best first, poster last) for the web preview;
    `animateflow_info` the facts."""
    return {
        "animateflow": preview_payload.preview_items(result, fps),
        "animateflow_info": [f"{result.frame_count} frames, {result.width}x{result.height}, {fps:g} fps",
                             *result.notes],
    }


NODES = [VideoCombine]
