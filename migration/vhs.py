"""Rows of the mapping table for VideoHelperSuite (node ids VHS_…): Load Video, Load Images, Video Combine, and the
batch helpers ComfyUI's own nodes do exactly (VAE Decode/Encode Batched, Duplicate Images/Latents, Get Image Count),
Select Every Nth Image/Latent/Mask and the Video Info nodes.

VideoHelperSuite saves widget values as a dict by name in current versions and as a positional list in older ones
(with a `videopreview` dict and an upload button's value among them); both are read. Its old Load Video had a
`force_size` combo where custom_width/custom_height now are.
"""

from __future__ import annotations

from . import vocab
from .rule import Context, Rule
from .video_combine import combine_rules

def _video_loader(ctx: Context) -> None:
    force_size = ctx.old.get("force_size")
    if force_size is not None and force_size != "Disabled":
        w, h, warning = vocab.vhs_force_size(force_size, ctx.old.get("custom_width", 0),
                                              ctx.old.get("custom_height", 0))
        ctx.new["custom_width"], ctx.new["custom_height"] = w, h
        if warning:
            ctx.warn(warning)
    elif force_size == "Disabled":
        ctx.new["custom_width"], ctx.new["custom_height"] = 0, 0
    ctx.new["force_rate"] = float(ctx.new.get("force_rate", 0.0))
    fmt = ctx.old.get("format", "AnimateDiff")
    if fmt not in ("AnimateDiff", "None", None):
        ctx.warn(f"format {fmt!r} (frame count and size rounding for another video model) has no equivalent "
                 "here; frames load as they are")
    if "meta_batch" in ctx.connected:
        ctx.warn("meta_batch: the Meta Batch Manager has no equivalent here (pass a vae to load long videos as "
                 "latents a chunk at a time); the link is removed")


def _image_folder(ctx: Context) -> None:
    if "meta_batch" in ctx.connected:
        ctx.warn("meta_batch: the Meta Batch Manager has no equivalent here; the link is removed")


_LOAD_VIDEO_COPY = {"force_rate": "force_rate", "custom_width": "custom_width", "custom_height": "custom_height",
                    "frame_load_cap": "frame_load_cap", "skip_first_frames": "skip_first_frames",
                    "select_every_nth": "select_every_nth"}
_LOAD_VIDEO_DEFAULTS = {"force_rate": 0, "custom_width": 0, "custom_height": 0, "frame_load_cap": 0,
                        "skip_first_frames": 0, "select_every_nth": 1, "format": "AnimateDiff"}
_LOAD_VIDEO_OPTS = ("force_rate", "custom_width", "custom_height", "frame_load_cap", "skip_first_frames",
                    "select_every_nth")
_VHS_VIDEO_UI = frozenset({"videopreview", "choose video to upload", "choose file to upload", "upload"})
# VHS: IMAGE, frame_count, audio, video_info → ours: images, frame_count, fps, audio, latents, video, video_info.
_LOAD_VIDEO_OUTPUTS = {0: 0, 1: 1, 2: 3, 3: 6}


def _load_video_rule(old: str, target: str, file_widget: str, ours: str) -> Rule:
    return Rule(
        old, target,
        layouts=((file_widget, *_LOAD_VIDEO_OPTS, "format", "choose video to upload", "videopreview"),
                 (file_widget, *_LOAD_VIDEO_OPTS, "choose video to upload", "videopreview"),
                 (file_widget, *_LOAD_VIDEO_OPTS, "videopreview"),
                 (file_widget, "force_rate", "force_size", "custom_width", "custom_height", "frame_load_cap",
                  "skip_first_frames", "select_every_nth", "choose video to upload", "videopreview"),
                 (file_widget, "force_rate", "force_size", "custom_width", "custom_height", "frame_load_cap",
                  "skip_first_frames", "select_every_nth", "videopreview"),
                 (file_widget, "force_rate", "force_size", "frame_load_cap", "skip_first_frames",
                  "select_every_nth", "choose video to upload", "videopreview"),
                 (file_widget, "frame_load_cap", "skip_first_frames", "select_every_nth", "choose video to upload",
                  "videopreview"),
                 (file_widget, "frame_load_cap", "skip_first_frames", "choose video to upload")),
        defaults={file_widget: "", **_LOAD_VIDEO_DEFAULTS},
        copy={file_widget: ours, **_LOAD_VIDEO_COPY},
        links={"vae": "vae", "meta_batch": None},
        outputs=_LOAD_VIDEO_OUTPUTS,
        ui_only=_VHS_VIDEO_UI,
        translate=_video_loader,
    )

def _image_folder_rule(old: str) -> Rule:
    return Rule(
        old, "AnimateFlow_LoadImageSequence",
        layouts=(("directory", "image_load_cap", "skip_first_images", "select_every_nth", "choose folder to upload"),
                 ("directory", "image_load_cap", "skip_first_images", "select_every_nth"),
                 ("directory", "image_load_cap", "skip_first_images")),
        defaults={"directory": "", "image_load_cap": 0, "skip_first_images": 0, "select_every_nth": 1},
        copy={"directory": "folder", "image_load_cap": "frame_load_cap", "skip_first_images": "skip_first_frames",
              "select_every_nth": "select_every_nth"},
        links={"meta_batch": None},
        outputs={0: 0, 1: 1, 2: 2},
        ui_only=frozenset({"choose folder to upload", "videopreview"}),
        translate=_image_folder,
    )


def _per_batch(ctx: Context) -> None:
    ctx.unless_default("per_batch", 16, "ComfyUI's VAE node sizes its batches by the memory free")


def _repeat_latents(ctx: Context) -> None:
    if ctx.new.get("amount", 1) > REPEAT_LATENT_MAX:
        ctx.warn(f"multiply_by = {ctx.new['amount']} is more than ComfyUI's Repeat Latent Batch takes; "
                 f"set to {REPEAT_LATENT_MAX}")
        ctx.new["amount"] = REPEAT_LATENT_MAX


# ComfyUI's Repeat Latent Batch takes 1..64.
REPEAT_LATENT_MAX = 64

# VideoHelperSuite's batch helpers that ComfyUI's own nodes do exactly (same tensors out): their count outputs
# have no equivalent there, except Get Image Count's, which is Get Image Size's batch_size.
_CORE_EQUIVALENTS: tuple[Rule, ...] = (
    Rule("VHS_VAEDecodeBatched", "VAEDecode", layouts=(("per_batch",),), defaults={"per_batch": 16},
         links={"samples": "samples", "vae": "vae"}, outputs={0: 0}, translate=_per_batch),
    Rule("VHS_VAEEncodeBatched", "VAEEncode", layouts=(("per_batch",),), defaults={"per_batch": 16},
         links={"pixels": "pixels", "vae": "vae"}, outputs={0: 0}, translate=_per_batch),
    Rule("VHS_DuplicateImages", "RepeatImageBatch", layouts=(("multiply_by",),), defaults={"multiply_by": 1},
         copy={"multiply_by": "amount"}, links={"images": "image"}, outputs={0: 0, 1: None}),
    Rule("VHS_DuplicateLatents", "RepeatLatentBatch", layouts=(("multiply_by",),), defaults={"multiply_by": 1},
         copy={"multiply_by": "amount"}, links={"latents": "samples"}, outputs={0: 0, 1: None},
         translate=_repeat_latents),
    Rule("VHS_GetImageCount", "GetImageSize", layouts=((),), defaults={}, links={"images": "image"},
         outputs={0: 2}),
)


def _select_every_nth(kind: str, theirs: str, skip: str, ours: str) -> Rule:
    return Rule(f"VHS_SelectEveryNth{kind}", f"AnimateFlow_SelectEveryNth{kind}", layouts=(("select_every_nth", skip),),
                defaults={"select_every_nth": 1, skip: 0},
                copy={"select_every_nth": "select_every_nth", skip: "skip_first_frames"},
                links={theirs: ours}, outputs={0: 0, 1: 1})


def _video_info(old: str, first: int, count: int) -> Rule:
    """Their Video Info nodes: all ten facts, or the five of the source (0…4 of ours) or of the loaded frames
    (5…9)."""
    return Rule(old, "AnimateFlow_VideoInfo", layouts=((),), defaults={}, links={"video_info": "video_info"},
                outputs={i: first + i for i in range(count)})


VHS_RULES: tuple[Rule, ...] = (
    _load_video_rule("VHS_LoadVideo", "AnimateFlow_LoadVideo", "video", "video"),
    _load_video_rule("VHS_LoadVideoPath", "AnimateFlow_LoadVideoPath", "video", "video_path"),
    _image_folder_rule("VHS_LoadImages"),
    _image_folder_rule("VHS_LoadImagesPath"),
    *combine_rules(),
    *_CORE_EQUIVALENTS,
    _select_every_nth("Image", "images", "skip_first_images", "images"),
    _select_every_nth("Latent", "latents", "skip_first_latents", "latents"),
    _select_every_nth("Mask", "mask", "skip_first_masks", "masks"),
    _video_info("VHS_VideoInfo", 0, 10),
    _video_info("VHS_VideoInfoSource", 0, 5),
    _video_info("VHS_VideoInfoLoaded", 5, 5),
)
