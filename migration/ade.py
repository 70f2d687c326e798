"""Rows of the mapping table for the leading AnimateDiff pack (ComfyUI-AnimateDiff-Evolved, node ids ADE_…).

Read from its node definitions (INPUT_TYPES) at d8d163c and the shapes older versions saved: widgets added over
time (fuse_method, use_on_equal_length, start_percent, guarantee_steps on context options; motion_scale and
apply_v2_models_properly on the legacy loader; adapt_denoise_steps on sample settings) and renamed inputs
(the LoRA loader's lora_name, now name).
"""

from __future__ import annotations

from typing import Any, Callable

from . import vocab
from .rule import Context, Rule

_CONTEXT_EXTRAS = ("use_on_equal_length", "start_percent", "guarantee_steps")
_CONTEXT_DEFAULTS = {"context_length": 16, "context_stride": 1, "context_overlap": 4, "closed_loop": False,
                     "use_on_equal_length": False, "start_percent": 0.0, "guarantee_steps": 1}
_CONTEXT_LINKS = {"prev_context": None, "view_opts": None}


def _context(ctx: Context) -> None:
    if ctx.old.get("context_length", 16) < 2:
        ctx.warn(f"context_length {ctx.old['context_length']} is below our minimum 2; using 2")
        ctx.new["context_length"] = 2
    if "fuse_method" in ctx.old:
        ctx.new["fuse_method"], warning = vocab.fuse_method(ctx.old["fuse_method"])
        if warning:
            ctx.warn(warning)
    ctx.unless_default("use_on_equal_length", False, "a video exactly context_length long is sampled as one window")
    ctx.unless_default("start_percent", 0.0, "context windows apply over the whole sampling")
    ctx.unless_default("guarantee_steps", 1, "ignored")
    for name in ("prev_context", "view_opts"):
        if name in ctx.connected:
            ctx.warn(f"{name}: chained context options and views have no equivalent here; only this node's "
                     "options are used")


def _beta(ctx: Context) -> None:
    """The combined nodes accept their names; still say where a name changes meaning."""
    _, warning = vocab.beta_schedule(str(ctx.old.get("beta_schedule", "autoselect")))
    if warning:
        ours, _ = vocab.beta_schedule(str(ctx.old.get("beta_schedule")))
        ctx.new["beta_schedule"] = ours
        ctx.warn(warning)


def _loader(ctx: Context) -> None:
    _beta(ctx)
    if ctx.old.get("apply_v2_models_properly", True) is False:
        ctx.warn("apply_v2_models_properly = False has no equivalent here: v2 motion modules are always applied "
                 "the proper way (their mid block included)")
    for name, what in (("ad_settings", "motion model settings"), ("ad_keyframes", "motion keyframes"),
                       ("per_block", "per-block settings"), ("motion_model_settings", "motion model settings")):
        if name in ctx.connected:
            ctx.warn(f"{name}: {what} have no equivalent here; the link is removed")


def _prepare(ctx: Context) -> None:
    _loader(ctx)
    for name, default in (("start_percent", 0.0), ("end_percent", 1.0)):
        ctx.unless_default(name, default, "the motion module applies over the whole sampling (the node warns)")


def _sample_settings(ctx: Context) -> None:
    if ctx.old.get("noise_type", "default") not in ("default", "FreeNoise"):
        ctx.warn(f"noise_type {ctx.old['noise_type']!r} has no equivalent here; using default")
        ctx.new["noise_type"] = "default"
    seed_gen = str(ctx.old.get("seed_gen", "comfy"))
    if seed_gen not in ("comfy", "auto1111"):
        plain = "auto1111" if seed_gen.startswith("auto1111") else "comfy"
        ctx.warn(f"seed_gen {seed_gen!r} becomes {plain!r} (noise drawn on the CPU)")
        ctx.new["seed_gen"] = plain
    if ctx.new.get("seed_gen") == "auto1111":
        ctx.warn("seed_gen 'auto1111' becomes per-frame noise (each frame's noise from the seed and its index, "
                 "as A1111 does), drawn from other numbers than the leading pack's")
    ctx.unless_default("batch_offset", 0, "the node warns and ignores it")
    ctx.unless_default("seed_offset", 0, "the node warns and ignores it")
    ctx.unless_default("adapt_denoise_steps", False, "the node warns and ignores it")
    for name in ("noise_layers", "iteration_opts", "seed_override", "custom_cfg", "sigma_schedule", "image_inject",
                 "ancestral_opts", "noise_calib"):
        if name in ctx.connected:
            ctx.warn(f"{name}: no equivalent here; the link is removed"
                     + (" (use FreeInit (AnimateFlow) on the model for FreeInit)" if name == "iteration_opts" else ""))


def _empty_latent(ctx: Context) -> None:
    if int(ctx.old.get("batch_size", 1)) > 4096:
        ctx.warn(f"batch_size {ctx.old['batch_size']} is above core Empty Latent Image's maximum 4096")


_LOADER_WIDGETS = {"model_name": "model_name", "beta_schedule": "beta_schedule"}
_MOTION_LOADER_LINKS = {"model": "model", "context_options": "context_options", "motion_lora": "motion_lora",
                        "sample_settings": "sample_settings", "ad_settings": None, "ad_keyframes": None,
                        "motion_model_settings": None}


def _context_rule(old: str, head: tuple[str, ...], fixed: dict[str, Any], fuse_default: str,
                  translate: Callable[[Context], None] = _context) -> Rule:
    return Rule(
        old, "AnimateFlow_ContextOptions",
        layouts=((*head, "fuse_method", *_CONTEXT_EXTRAS), (*head, "fuse_method", *_CONTEXT_EXTRAS, "deprecation_warning"),
                 (*head, "fuse_method", "use_on_equal_length"), (*head, "fuse_method"), head),
        defaults={**_CONTEXT_DEFAULTS, "fuse_method": fuse_default},
        copy={name: name for name in ("context_length", "context_stride", "context_overlap", "closed_loop",
                                      "fuse_method") if name in head or name == "fuse_method"},
        fixed=fixed,
        links=_CONTEXT_LINKS,
        outputs={0: 0},
        ui_only=frozenset({"deprecation_warning"}),
        translate=translate,
    )


ADE_RULES: tuple[Rule, ...] = (
    # Context options: their "standard uniform" is our uniform, their "looped uniform" our looped.
    _context_rule("ADE_StandardUniformContextOptions", ("context_length", "context_stride", "context_overlap"),
                  {"schedule": "uniform", "closed_loop": False}, "pyramid"),
    _context_rule("ADE_LoopedUniformContextOptions",
                  ("context_length", "context_stride", "context_overlap", "closed_loop"),
                  {"schedule": "looped"}, "pyramid"),
    _context_rule("ADE_StandardStaticContextOptions", ("context_length", "context_overlap"),
                  {"schedule": "static", "closed_loop": False}, "pyramid"),
    _context_rule("ADE_AnimateDiffUniformContextOptions",
                  ("context_length", "context_stride", "context_overlap", "context_schedule", "closed_loop"),
                  {"schedule": "looped"}, "flat"),
    Rule("ADE_AnimateDiffLoaderWithContext", "AnimateFlow_AnimateDiffLoader",
         layouts=(("model_name", "beta_schedule", "motion_scale", "apply_v2_models_properly"),
                  ("model_name", "beta_schedule", "motion_scale", "apply_v2_models_properly", "deprecation_warning"),
                  ("model_name", "beta_schedule", "motion_scale"),
                  ("model_name", "beta_schedule")),
         defaults={"model_name": "", "beta_schedule": "autoselect", "motion_scale": 1.0,
                   "apply_v2_models_properly": True},
         # Their legacy loader's motion_scale scales the temporal attention's keys: our attention_key_scale.
         copy={**_LOADER_WIDGETS, "motion_scale": "attention_key_scale"},
         links=_MOTION_LOADER_LINKS,
         outputs={0: 0},
         ui_only=frozenset({"deprecation_warning"}),
         translate=_loader),
    Rule("ADE_AnimateDiffLoaderGen1", "AnimateFlow_AnimateDiffLoader",
         layouts=(("model_name", "beta_schedule"),),
         defaults={"model_name": "", "beta_schedule": "autoselect"},
         copy=_LOADER_WIDGETS,
         links={**_MOTION_LOADER_LINKS, "scale_multival": "scale_multival", "effect_multival": "effect_multival",
                "per_block": None},
         outputs={0: 0},
         translate=_loader),
    Rule("ADE_LoadAnimateDiffModel", "AnimateFlow_LoadMotionModule",
         layouts=(("model_name",),),
         defaults={"model_name": ""},
         copy={"model_name": "model_name"},
         links={"ad_settings": None},
         outputs={0: 0},
         translate=_loader),
    Rule("ADE_ApplyAnimateDiffModel", "AnimateFlow_PrepareMotionModule",
         layouts=(("start_percent", "end_percent"),),
         defaults={"start_percent": 0.0, "end_percent": 1.0},
         copy={"start_percent": "start_percent", "end_percent": "end_percent"},
         links={"motion_model": "motion_module", "motion_lora": "motion_lora", "scale_multival": "scale_multival",
                "effect_multival": "effect_multival", "prev_m_models": "prev_m_models", "ad_keyframes": None,
                "per_block": None},
         outputs={0: 0},
         translate=_prepare),
    Rule("ADE_ApplyAnimateDiffModelSimple", "AnimateFlow_PrepareMotionModule",
         layouts=((),),
         defaults={},
         links={"motion_model": "motion_module", "motion_lora": "motion_lora", "scale_multival": "scale_multival",
                "effect_multival": "effect_multival", "ad_keyframes": None, "per_block": None},
         outputs={0: 0},
         translate=_prepare),
    Rule("ADE_UseEvolvedSampling", "AnimateFlow_UseMotionModule",
         layouts=(("beta_schedule",),),
         defaults={"beta_schedule": "autoselect"},
         copy={"beta_schedule": "beta_schedule"},
         links={"model": "model", "m_models": "m_models", "context_options": "context_options",
                "sample_settings": "sample_settings"},
         outputs={0: 0},
         translate=_beta),
    Rule("ADE_AnimateDiffLoRALoader", "AnimateFlow_MotionLoRAList",
         layouts=(("name", "strength"),),
         defaults={"name": "", "strength": 1.0},
         copy={"name": "name", "strength": "strength"},
         links={"prev_motion_lora": "prev_motion_lora"},
         outputs={0: 0},
         aliases={"lora_name": "name"}),
    Rule("ADE_MultivalDynamic", "AnimateFlow_MotionScale",
         layouts=(("float_val",),),
         defaults={"float_val": 1.0},
         copy={"float_val": "float_val"},
         links={"mask_optional": "mask_optional"},
         outputs={0: 0}),
    Rule("ADE_AnimateDiffSamplingSettings", "AnimateFlow_SampleSettings",
         # Frontends before forceInput became a plain socket saved seed_override's (unused) widget value too.
         layouts=(("batch_offset", "noise_type", "seed_gen", "seed_offset", "adapt_denoise_steps"),
                  ("batch_offset", "noise_type", "seed_gen", "seed_offset", "seed_override", "adapt_denoise_steps"),
                  ("batch_offset", "noise_type", "seed_gen", "seed_offset")),
         defaults={"batch_offset": 0, "noise_type": "default", "seed_gen": "comfy", "seed_offset": 0,
                   "seed_override": 0, "adapt_denoise_steps": False},
         ui_only=frozenset({"seed_override"}),  # a socket's value: only a link counts
         copy={n: n for n in ("batch_offset", "noise_type", "seed_gen", "seed_offset", "adapt_denoise_steps")},
         links={n: None for n in ("noise_layers", "iteration_opts", "seed_override", "custom_cfg", "sigma_schedule",
                                  "image_inject", "ancestral_opts", "noise_calib")},
         outputs={0: 0},
         translate=_sample_settings),
    Rule("ADE_EmptyLatentImageLarge", "EmptyLatentImage",
         layouts=(("width", "height", "batch_size"),),
         defaults={"width": 512, "height": 512, "batch_size": 1},
         copy={"width": "width", "height": "height", "batch_size": "batch_size"},
         outputs={0: 0},
         translate=_empty_latent),
)
