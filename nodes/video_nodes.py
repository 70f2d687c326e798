"""Video Combine: an IMAGE batch to GIF / MP4 / WEBM / PNG frames / TXT, previewed on the node."""

from __future__ import annotations

from fractions import Fraction

import comfy.model_management
import comfy.utils
from comfy.cli_args import args
from comfy_api.latest import InputImpl, Types, io

from ..media import ffmpeg_writer, frames, gif_writer, latent_stream
from ..media.video_writer import CombineOptions, CombineResult, combine
from .common import CATEGORY, display_name, node_id

NAME = "Video Combine"
PREVIEW_KINDS = ("mp4", "webm", "gif")


class VideoCombine(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=node_id("VideoCombine"),
            display_name=display_name(NAME),
            category=CATEGORY,
            description="Saves an image batch (or latents, decoded a chunk at a time) as GIF, MP4 (H.264), WEBM "
                        "(VP9), PNG frames and a text file of the settings, in ComfyUI's output folder, and plays "
                        "the result on the node. The workflow is embedded in every file; dropping the MP4, WEBM "
                        "or a PNG on the editor restores the graph (the editor does not read GIFs).",
            inputs=[
                io.Image.Input("images", optional=True,
                               tooltip="The frames, in order. Or connect latents and a vae instead."),
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
                                 tooltip="With reverse: drop the first reversed frame (it repeats the last frame)."),
                io.Boolean.Input("remove_tail", optional=True, default=False,
                                 tooltip="With reverse: drop the last reversed frame (it repeats the first frame "
                                         "when the video loops)."),
                io.Combo.Input("gif_dither", optional=True, options=list(gif_writer.DITHER), default="floyd_steinberg",
                               tooltip="How GIF colours are reduced to 256 per frame: floyd_steinberg trades "
                                       "banding for fine noise; none keeps flat areas flat."),
                io.Boolean.Input("gif_optimize", optional=True, default=True,
                                 tooltip="Let Pillow shrink the GIF's palettes (smaller file, same picture)."),
                io.Int.Input("gifsicle_optimize", optional=True, default=0, min=0, max=3,
                             tooltip="Run gifsicle -O1..-O3 on the GIF when gifsicle is installed (0 = off). "
                                     "Sizes before and after are reported on the node."),
                io.Int.Input("gifsicle_lossy", optional=True, default=0, min=0, max=200,
                             tooltip="gifsicle --lossy level (0 = lossless); higher is smaller and noisier."),
                io.Int.Input("crf", optional=True, default=19, min=0, max=63,
                             tooltip="Quality of MP4/WEBM: lower is better and larger (H.264 0-51, VP9 0-63)."),
                io.Combo.Input("preset", optional=True, options=list(ffmpeg_writer.PRESETS), default="medium",
                               tooltip="Encoder speed against file size at the same quality (x264 presets; "
                                       "mapped to VP9's cpu-used for WEBM)."),
                io.Audio.Input("audio", optional=True,
                               tooltip="Sound muxed into MP4/WEBM, trimmed or padded with silence to the video's "
                                       "length."),
                io.Latent.Input("latents", optional=True,
                                tooltip="Instead of images: latents (e.g. KSampler's output), decoded by the vae a "
                                        "chunk at a time while the files are written, so a long video never sits "
                                        "in memory as images. Each format written decodes once more."),
                io.Vae.Input("vae", optional=True, tooltip="The VAE that decodes latents (the checkpoint's)."),
            ],
            outputs=[
                io.String.Output("file_paths", tooltip="Full paths of the written files, one per line."),
                io.Video.Output("video", tooltip="The MP4 (else WEBM) as a VIDEO for ComfyUI's video nodes; "
                                                 "the frames themselves when neither was written (from "
                                                 "latents: the GIF if written)."),
            ],
            hidden=[io.Hidden.prompt, io.Hidden.extra_pnginfo],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, images=None, fps: float = 8.0, filename_prefix: str = "AnimateFlow", save_gif: bool = True,
                save_mp4: bool = True,
                save_webm: bool = False, save_png: bool = False, save_txt: bool = False, loop_count: int = 0,
                reverse: bool = False, remove_head: bool = False, remove_tail: bool = False,
                gif_dither: str = "floyd_steinberg", gif_optimize: bool = True, gifsicle_optimize: int = 0,
                gifsicle_lossy: int = 0, crf: int = 19, preset: str = "medium", audio=None, latents=None,
                vae=None) -> io.NodeOutput:
        options = CombineOptions(fps=fps, save_gif=save_gif, save_mp4=save_mp4, save_webm=save_webm,
                                 save_png=save_png, save_txt=save_txt, loop_count=loop_count, reverse=reverse,
                                 remove_head=remove_head, remove_tail=remove_tail, gif_dither=gif_dither,
                                 gif_optimize=gif_optimize, gifsicle_optimize=gifsicle_optimize,
                                 gifsicle_lossy=gifsicle_lossy, crf=crf, preset=preset)
        embed = not args.disable_metadata
        images = latent_stream.combine_source(images, latents, vae, NAME, _progress_bar(latents))
        result = combine(images, filename_prefix, options,
                         prompt=cls.hidden.prompt if embed else None,
                         extra_pnginfo=cls.hidden.extra_pnginfo if embed else None, audio=audio,
                         check_interrupt=comfy.model_management.throw_exception_if_processing_interrupted, node=NAME)
        if isinstance(images, latent_stream.DecodedFrames):
            result.notes.append(f"decoded from latents, {images.chunk} frames at a time "
                                f"({images.decoded_frames} frame decodes)")
        paths = "\n".join(saved.path for saved in result.files)
        return io.NodeOutput(paths, _video_value(result, images, fps, audio), ui=_ui(result, fps))


def _progress_bar(latents):
    """Decoding progress for latents (restarts with each format written); None for images."""
    if latents is None:
        return None
    bar = comfy.utils.ProgressBar(1)
    return lambda done, total: bar.update_absolute(done, total)


def _video_value(result: CombineResult, images, fps: float, audio):
    encoded = result.first("mp4", "webm")
    decoded = isinstance(images, latent_stream.DecodedFrames)
    if encoded is None and decoded:
        encoded = result.first("gif")  # rather than decode every frame into memory for this output
    if encoded is not None:
        return InputImpl.VideoFromFile(encoded.path)
    in_order = images.reorder(result.order) if decoded else frames.reorder(images, result.order)
    components = Types.VideoComponents(images=in_order, audio=audio,
                                       frame_rate=Fraction(fps).limit_denominator(1001))
    return InputImpl.VideoFromComponents(components)


def _ui(result: CombineResult, fps: float) -> dict:
    """`animateflow` lists playable files (best first) for the web preview; `animateflow_info` the facts."""
    previews = [result.first(kind) for kind in PREVIEW_KINDS]
    return {
        "animateflow": [{"filename": saved.filename, "subfolder": saved.subfolder, "type": "output",
                         "format": saved.mime, "frame_rate": fps} for saved in previews if saved is not None],
        "animateflow_info": [f"{result.frame_count} frames, {result.width}x{result.height}, {fps:g} fps",
                             *result.notes],
    }


NODES = [VideoCombine]
