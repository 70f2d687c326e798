"""Our side of the table: the nodes a migrated workflow ends up with, as the editor lays them out.

A UI-format workflow stores widget values by position and links by input slot, so the converter has to know each
target's widget order and socket order without importing ComfyUI. tests/test_migration_host.py compares every
entry here with the running server's /object_info, so a schema change that is not mirrored here fails the suite.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CONTEXT_OPTIONS = "ANIMATEFLOW_CONTEXT_OPTIONS"
MOTION_MODULE = "ANIMATEFLOW_MOTION_MODULE"
MOTION_SCALE = "ANIMATEFLOW_MOTION_SCALE"
MOTION_LORA = "ANIMATEFLOW_MOTION_LORA"
PREPARED_MOTION = "ANIMATEFLOW_PREPARED_MOTION"
SAMPLE_SETTINGS = "ANIMATEFLOW_SAMPLE_SETTINGS"


@dataclass(frozen=True)
class Target:
    node: str
    widgets: tuple[tuple[str, Any], ...]
    """(name, default) in the editor's widget order; None as a default: no fixed default (a file list)."""
    sockets: tuple[tuple[str, str], ...]
    """(name, type) of the link inputs, in slot order."""
    outputs: tuple[tuple[str, str], ...]

    def widget_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.widgets)

    def socket_type(self, name: str) -> str | None:
        return dict(self.sockets).get(name)


_LOAD_VIDEO_OPTIONS = (("frame_load_cap", 0), ("skip_first_frames", 0), ("select_every_nth", 1), ("force_rate", 0.0),
                       ("custom_width", 0), ("custom_height", 0))
VIDEO_INFO = "ANIMATEFLOW_VIDEO_INFO"
_LOAD_VIDEO_OUTPUTS = (("images", "IMAGE"), ("frame_count", "INT"), ("fps", "FLOAT"), ("audio", "AUDIO"),
                       ("latents", "LATENT"), ("video", "VIDEO"), ("video_info", VIDEO_INFO))
_VIDEO_FACTS = tuple((f"{side}_{fact}", "FLOAT" if fact in ("fps", "duration") else "INT")
                     for side in ("source", "loaded") for fact in ("fps", "frame_count", "duration", "width", "height"))

TARGETS: dict[str, Target] = {t.node: t for t in (
    Target("AnimateFlow_ContextOptions",
           (("context_length", 16), ("context_stride", 1), ("context_overlap", 4), ("closed_loop", False),
            ("schedule", "uniform"), ("fuse_method", "pyramid"), ("freenoise", False), ("max_batched_windows", 1),
            ("spread_over_gpus", False)),
           (), (("CONTEXT_OPTIONS", CONTEXT_OPTIONS),)),
    Target("AnimateFlow_LoadMotionModule", (("model_name", None),), (),
           (("MOTION_MODULE", MOTION_MODULE), ("format", "STRING"))),
    Target("AnimateFlow_VideoCombine",
           (("fps", 8.0), ("filename_prefix", "AnimateFlow"), ("save_gif", True), ("save_mp4", True),
            ("save_webm", False), ("save_png", False), ("save_txt", False), ("loop_count", 0), ("reverse", False),
            ("remove_head", False), ("remove_tail", False), ("gif_dither", "floyd_steinberg"), ("gif_optimize", True),
            ("gifsicle_optimize", 0), ("gifsicle_lossy", 0), ("crf", 19), ("preset", "medium"),
            ("extra_format", "none"), ("bit_depth", "8"), ("extra_crf", -1), ("webp_quality", 90),
            ("preview_only", False)),
           (("images", "IMAGE"), ("audio", "AUDIO"), ("mask", "MASK"), ("latents", "LATENT"), ("vae", "VAE"),
            ("input_video", "VIDEO")),
           (("file_paths", "STRING"), ("video", "VIDEO"))),
    Target("AnimateFlow_LoadVideo", (("video", None), *_LOAD_VIDEO_OPTIONS), (("vae", "VAE"),), _LOAD_VIDEO_OUTPUTS),
    Target("AnimateFlow_LoadVideoPath", (("video_path", ""), *_LOAD_VIDEO_OPTIONS), (("vae", "VAE"),),
           _LOAD_VIDEO_OUTPUTS),
    Target("AnimateFlow_VideoInfo", (), (("video_info", VIDEO_INFO),), _VIDEO_FACTS),
    Target("AnimateFlow_LoadImageSequence",
           (("folder", ""), ("frame_load_cap", 0), ("skip_first_frames", 0), ("select_every_nth", 1)), (),
           (("images", "IMAGE"), ("masks", "MASK"), ("count", "INT"))),
    Target("EmptyLatentImage", (("width", 512), ("height", 512), ("batch_size", 1)), (), (("LATENT", "LATENT"),)),
    # ComfyUI's own nodes that do what a VideoHelperSuite batch helper does.
    Target("VAEDecode", (), (("samples", "LATENT"), ("vae", "VAE")), (("IMAGE", "IMAGE"),)),
    Target("VAEEncode", (), (("pixels", "IMAGE"), ("vae", "VAE")), (("LATENT", "LATENT"),)),
    Target("RepeatImageBatch", (("amount", 1),), (("image", "IMAGE"),), (("IMAGE", "IMAGE"),)),
    Target("RepeatLatentBatch", (("amount", 1),), (("samples", "LATENT"),), (("LATENT", "LATENT"),)),
    Target("GetImageSize", (), (("image", "IMAGE"),), (("width", "INT"), ("height", "INT"), ("batch_size", "INT"))),
    *(Target(f"AnimateFlow_SelectEveryNth{kind}", (("select_every_nth", 1), ("skip_first_frames", 0)),
             ((socket, type_),), ((socket, type_), ("count", "INT")))
      for kind, socket, type_ in (("Image", "images", "IMAGE"), ("Latent", "latents", "LATENT"),
                                  ("Mask", "masks", "MASK"))),
    # The combined nodes (nodes/migration_nodes.py): one of ours for each of theirs that does two things.
    Target("AnimateFlow_AnimateDiffLoader",
           (("model_name", None), ("beta_schedule", "autoselect"), ("motion_scale", 1.0),
            ("attention_key_scale", 1.0)),
           (("model", "MODEL"), ("context_options", CONTEXT_OPTIONS), ("motion_lora", MOTION_LORA),
            ("sample_settings", SAMPLE_SETTINGS), ("effect_multival", MOTION_SCALE),
            ("scale_multival", MOTION_SCALE)),
           (("MODEL", "MODEL"),)),
    Target("AnimateFlow_MotionLoRAList", (("name", None), ("strength", 1.0)), (("prev_motion_lora", MOTION_LORA),),
           (("MOTION_LORA", MOTION_LORA),)),
    Target("AnimateFlow_PrepareMotionModule", (("start_percent", 0.0), ("end_percent", 1.0)),
           (("motion_module", MOTION_MODULE), ("motion_lora", MOTION_LORA), ("scale_multival", MOTION_SCALE),
            ("effect_multival", MOTION_SCALE), ("prev_m_models", PREPARED_MOTION)),
           (("M_MODELS", PREPARED_MOTION),)),
    Target("AnimateFlow_UseMotionModule", (("beta_schedule", "autoselect"),),
           (("model", "MODEL"), ("m_models", PREPARED_MOTION), ("context_options", CONTEXT_OPTIONS),
            ("sample_settings", SAMPLE_SETTINGS)),
           (("MODEL", "MODEL"),)),
    Target("AnimateFlow_SampleSettings",
           (("batch_offset", 0), ("noise_type", "default"), ("seed_gen", "comfy"), ("seed_offset", 0),
            ("adapt_denoise_steps", False)),
           (), (("settings", SAMPLE_SETTINGS),)),
    Target("AnimateFlow_MotionScale", (("float_val", 1.0),), (("mask_optional", "MASK"),),
           (("MULTIVAL", MOTION_SCALE),)),
)}
