"""Combined nodes: one of ours for each node of the leading AnimateDiff pack that does what two of ours do.

A node replacement swaps one node for one node (migration/registration.py), so where the leading pack splits or
joins steps differently from us (its loader that also applies; its Gen2 load → apply → use-evolved-sampling chain,
whose LoRAs, multivals and sample settings travel as values of their own), these nodes take the same inputs and
outputs and compose our motion/ and sampling/ logic. Their widgets keep the leading pack's names and accept its
option names (the editor copies values verbatim), translated by migration/vocab.py.
"""

from __future__ import annotations

import dataclasses
import logging

from comfy_api.latest import io

from ..host import folders
from ..migration import vocab
from ..migration.targets import MOTION_LORA, PREPARED_MOTION, SAMPLE_SETTINGS
from ..motion import beta_schedules, loader, lora
from ..motion.scale_schedule import MotionScaleSchedule
from ..sampling import noise
from ..sampling.context_handler import attach_context_options
from ..sampling.context_options import require_context_options
from . import motion_apply
from .common import (CATEGORY, display_name, node_id, owns_sampling, require_finite, search_aliases,
                     validate_floats)
from .types import ContextOptionsType, MotionModuleType, MotionScaleType, require_motion_module

log = logging.getLogger(__name__)

MotionLoRAType = io.Custom(MOTION_LORA)
PreparedMotionType = io.Custom(PREPARED_MOTION)
SampleSettingsType = io.Custom(SAMPLE_SETTINGS)
CATEGORY_MIGRATED = f"{CATEGORY}/from other packs"


@dataclasses.dataclass(frozen=True)
class MotionLoRAs:
    """The ANIMATEFLOW_MOTION_LORA value: motion LoRAs to add when the module is loaded, in order."""
    entries: tuple[tuple[str, float], ...] = ()


@dataclasses.dataclass(frozen=True)
class PreparedMotion:
    """The ANIMATEFLOW_PREPARED_MOTION value: a motion module and how to apply it, for Use Motion Module."""
    module: object
    loras: MotionLoRAs | None
    effect: MotionScaleSchedule | None
    key_scale: float


@dataclasses.dataclass(frozen=True)
class SampleSettings:
    """The ANIMATEFLOW_SAMPLE_SETTINGS value: the parts of the leading pack's sample settings we have."""
    noise_mode: str = "comfyui"
    freenoise: bool = False


def _require(value, kind: type, node: str, name: str, source: str):
    if value is not None and not isinstance(value, kind):
        raise TypeError(f"{node}: {name} must come from this pack's {source} node (AnimateFlow), not "
                        f"{type(value).__module__}.{type(value).__name__}; replace the connected node.")
    return value


def _with_loras(module, loras: MotionLoRAs | None, node: str):
    for name, strength in (loras.entries if loras else ()):
        fit = lora.fit_lora(module, loader.read_state_dict(folders.model_path(loader.LORA_FOLDER, name), "lora_name"),
                            name)
        module = lora.apply_fit(module, fit, strength)
    return module


def _key_scale(multival: MotionScaleSchedule | None, node: str) -> float:
    """Their scale multival scales the attention's keys; ours is one number, so only a plain value carries over."""
    if multival is None:
        return 1.0
    _require(multival, MotionScaleSchedule, node, "scale_multival", "Motion Scale (Multival)")
    if multival.mask is not None or len(set(multival.values)) > 1 or {multival.down, multival.mid, multival.up} != {1.0}:
        raise ValueError(f"{node}: scale_multival with a mask or a schedule has no equivalent here (the attention "
                         "key scale is one number); connect a Motion Scale node without a mask, or use "
                         "effect_multival to vary the motion")
    return multival.values[0]


def _use(model, beta_schedule: str, owner: type[io.ComfyNode], prepared: PreparedMotion | None, context_options,
         settings, motion_scale: float = 1.0, node_ref: str | None = None):
    """The model patched the way the leading pack's Use Evolved Sampling would, owned by node `owner`."""
    node = owner.NAME
    _require(settings, SampleSettings, node, "sample_settings", "Sample Settings")
    schedule, warning = vocab.beta_schedule(beta_schedule)
    if warning:
        log.warning("%s: %s", node, warning)
    if context_options is not None:
        context_options = require_context_options(context_options)
        if settings is not None and settings.freenoise:
            context_options = dataclasses.replace(context_options, freenoise=True)
    if prepared is not None:
        model = motion_apply.apply_motion_module(model, prepared.module, motion_scale, schedule, context_options,
                                          scale_schedule=prepared.effect, attention_key_scale=prepared.key_scale,
                                          node_id=node_ref)
    else:
        model = model.clone()
        if context_options is not None:
            attach_context_options(model, context_options)
        beta_schedules.apply(model, "sd" if schedule == "auto" else schedule)
    if settings is not None and settings.noise_mode != "comfyui":
        noise.attach(model, settings.noise_mode)
    owns_sampling(model, owner)
    return model


class AnimateDiffLoader(io.ComfyNode):
    NAME = "AnimateDiff Loader"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=node_id("AnimateDiffLoader"),
            display_name=display_name(cls.NAME),
            category=CATEGORY_MIGRATED,
            **search_aliases("AnimateDiff Loader", "AnimateDiff Loader Gen1", "AnimateDiff Loader With Context"),
            description="Loads a motion module and applies it to the model in one step, like the leading "
                        "AnimateDiff pack's AnimateDiff Loader (Gen1 and legacy), which workflows made for it "
                        "are migrated to. Load Motion Module + Apply Motion Module do the same in two steps.",
            inputs=[
                io.Model.Input("model", tooltip="An SD1.5 or SDXL model matching the motion module."),
                io.Combo.Input("model_name", options=folders.model_names(loader.MODELS_FOLDER),
                               tooltip="A motion module file in models/animatediff_models."),
                io.Combo.Input("beta_schedule", options=list(vocab.COMBINED_BETA_OPTIONS), default="autoselect",
                               tooltip="The leading pack's names (autoselect = auto: the module's own schedule) "
                                       "or ours; see Apply Motion Module."),
                io.Float.Input("motion_scale", default=1.0, min=0.0, max=10.0, step=0.01,
                               tooltip="Multiplies what the motion module adds (the leading pack's 'effect')."),
                io.Float.Input("attention_key_scale", default=1.0, min=0.0, max=10.0, step=0.01,
                               tooltip="Multiplies the temporal attention's keys (the leading pack's 'scale'; "
                                       "its legacy loader called it motion_scale)."),
                ContextOptionsType.Input("context_options", optional=True, tooltip="From Context Options."),
                MotionLoRAType.Input("motion_lora", optional=True, tooltip="From Motion LoRA List."),
                SampleSettingsType.Input("sample_settings", optional=True, tooltip="From Sample Settings."),
                MotionScaleType.Input("effect_multival", optional=True,
                                      tooltip="From Motion Scale (or Motion Scale Schedule): motion_scale per frame, "
                                              "block or region."),
                MotionScaleType.Input("scale_multival", optional=True,
                                      tooltip="From Motion Scale without a mask: multiplies attention_key_scale."),
            ],
            outputs=[io.Model.Output(tooltip="The model with the motion module; connect it to the sampler.")],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def validate_inputs(cls, motion_scale=None, attention_key_scale=None) -> bool | str:
        return validate_floats(cls, motion_scale=motion_scale, attention_key_scale=attention_key_scale)

    @classmethod
    def execute(cls, model, model_name: str, beta_schedule: str, motion_scale: float, attention_key_scale: float,
                context_options=None, motion_lora=None, sample_settings=None, effect_multival=None,
                scale_multival=None) -> io.NodeOutput:
        require_finite(cls, motion_scale=motion_scale, attention_key_scale=attention_key_scale)
        _require(motion_lora, MotionLoRAs, cls.NAME, "motion_lora", "Motion LoRA List")
        _require(effect_multival, MotionScaleSchedule, cls.NAME, "effect_multival", "Motion Scale")
        module = loader.load_motion_module(folders.model_path(loader.MODELS_FOLDER, model_name))
        prepared = PreparedMotion(_with_loras(module, motion_lora, cls.NAME), motion_lora, effect_multival,
                                  attention_key_scale * _key_scale(scale_multival, cls.NAME))
        unique = cls.hidden.unique_id if cls.hidden else None
        return io.NodeOutput(_use(model, beta_schedule, cls, prepared, context_options, sample_settings, motion_scale,
                                  unique))


class MotionLoRAList(io.ComfyNode):
    NAME = "Motion LoRA List"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=node_id("MotionLoRAList"),
            display_name=display_name(cls.NAME),
            category=CATEGORY_MIGRATED,
            **search_aliases("Load AnimateDiff LoRA", "motion LoRA", "AnimateDiff LoRA"),
            description="Names a motion LoRA for AnimateDiff Loader or Prepare Motion Module to add when they load "
                        "the module (the leading pack's Load AnimateDiff LoRA); chain several. Motion LoRA Loader "
                        "does the same on a loaded module.",
            inputs=[
                io.Combo.Input("name", options=folders.model_names(loader.LORA_FOLDER),
                               tooltip="A motion LoRA file in models/animatediff_motion_lora."),
                io.Float.Input("strength", default=1.0, min=-10.0, max=10.0, step=0.01,
                               tooltip="How much of the LoRA to add; 0 leaves the module unchanged."),
                MotionLoRAType.Input("prev_motion_lora", optional=True, tooltip="Earlier LoRAs of the chain."),
            ],
            outputs=[MotionLoRAType.Output(display_name="MOTION_LORA")],
        )

    @classmethod
    def validate_inputs(cls, strength=None) -> bool | str:
        return validate_floats(cls, strength=strength)

    @classmethod
    def execute(cls, name: str, strength: float, prev_motion_lora=None) -> io.NodeOutput:
        require_finite(cls, strength=strength)
        folders.model_path(loader.LORA_FOLDER, name)
        previous = _require(prev_motion_lora, MotionLoRAs, cls.NAME, "prev_motion_lora", cls.NAME) or MotionLoRAs()
        return io.NodeOutput(MotionLoRAs(previous.entries + ((name, float(strength)),)))


class PrepareMotionModule(io.ComfyNode):
    NAME = "Prepare Motion Module"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=node_id("PrepareMotionModule"),
            display_name=display_name(cls.NAME),
            category=CATEGORY_MIGRATED,
            **search_aliases("Apply AnimateDiff Model", "Apply AnimateDiff Model (Simple)", "AnimateDiff"),
            description="A motion module with its LoRAs and scales, for Use Motion Module (the leading pack's "
                        "Apply AnimateDiff Model, Gen2).",
            inputs=[
                io.Float.Input("start_percent", default=0.0, min=0.0, max=1.0, step=0.001,
                               tooltip="Only 0 is supported: the module applies over the whole sampling."),
                io.Float.Input("end_percent", default=1.0, min=0.0, max=1.0, step=0.001,
                               tooltip="Only 1 is supported: the module applies over the whole sampling."),
                MotionModuleType.Input("motion_module", tooltip="From Load Motion Module."),
                MotionLoRAType.Input("motion_lora", optional=True, tooltip="From Motion LoRA List."),
                MotionScaleType.Input("scale_multival", optional=True,
                                      tooltip="From Motion Scale without a mask: the attention key scale."),
                MotionScaleType.Input("effect_multival", optional=True,
                                      tooltip="From Motion Scale or Motion Scale Schedule: the motion scale."),
                PreparedMotionType.Input("prev_m_models", optional=True,
                                         tooltip="Not supported: one motion module per model here."),
            ],
            outputs=[PreparedMotionType.Output(display_name="M_MODELS")],
        )

    @classmethod
    def validate_inputs(cls, start_percent=None, end_percent=None) -> bool | str:
        return validate_floats(cls, start_percent=start_percent, end_percent=end_percent)

    @classmethod
    def execute(cls, start_percent: float, end_percent: float, motion_module, motion_lora=None,
                scale_multival=None, effect_multival=None, prev_m_models=None) -> io.NodeOutput:
        require_finite(cls, start_percent=start_percent, end_percent=end_percent)
        if prev_m_models is not None:
            raise ValueError(f"{cls.NAME}: prev_m_models is connected, but this pack applies one motion module per "
                             "model; disconnect it (or apply the other module to another model)")
        if (start_percent, end_percent) != (0.0, 1.0):
            log.warning("%s: start_percent %g / end_percent %g have no equivalent here; the motion module applies "
                        "over the whole sampling", cls.NAME, start_percent, end_percent)
        module = require_motion_module(motion_module, cls.NAME)
        _require(motion_lora, MotionLoRAs, cls.NAME, "motion_lora", "Motion LoRA List")
        _require(effect_multival, MotionScaleSchedule, cls.NAME, "effect_multival", "Motion Scale")
        return io.NodeOutput(PreparedMotion(_with_loras(module, motion_lora, cls.NAME), motion_lora, effect_multival,
                                            _key_scale(scale_multival, cls.NAME)))


class UseMotionModule(io.ComfyNode):
    NAME = "Use Motion Module"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=node_id("UseMotionModule"),
            display_name=display_name(cls.NAME),
            category=CATEGORY_MIGRATED,
            **search_aliases("Use Evolved Sampling", "AnimateDiff sampling"),
            description="Applies a prepared motion module, context options and sample settings to the model (the "
                        "leading pack's Use Evolved Sampling, Gen2).",
            inputs=[
                io.Model.Input("model", tooltip="The model to sample with; it is cloned, not changed."),
                io.Combo.Input("beta_schedule", options=list(vocab.COMBINED_BETA_OPTIONS), default="autoselect",
                               tooltip="The leading pack's names or ours; see Apply Motion Module."),
                PreparedMotionType.Input("m_models", optional=True, tooltip="From Prepare Motion Module."),
                ContextOptionsType.Input("context_options", optional=True, tooltip="From Context Options."),
                SampleSettingsType.Input("sample_settings", optional=True, tooltip="From Sample Settings."),
            ],
            outputs=[io.Model.Output(tooltip="The model to connect to the sampler.")],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def execute(cls, model, beta_schedule: str, m_models=None, context_options=None,
                sample_settings=None) -> io.NodeOutput:
        prepared = _require(m_models, PreparedMotion, cls.NAME, "m_models", "Prepare Motion Module")
        unique = cls.hidden.unique_id if cls.hidden else None
        return io.NodeOutput(_use(model, beta_schedule, cls, prepared, context_options, sample_settings,
                                  node_ref=unique))


class SampleSettingsNode(io.ComfyNode):
    NAME = "Sample Settings"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=node_id("SampleSettings"),
            display_name=display_name(cls.NAME),
            category=CATEGORY_MIGRATED,
            **search_aliases("Sample Settings", "AnimateDiff noise"),
            description="The leading pack's Sample Settings, as far as this pack has them: per-frame noise "
                        "(seed_gen auto1111) and FreeNoise (noise_type FreeNoise). For AnimateDiff Loader or Use "
                        "Motion Module.",
            inputs=[
                io.Int.Input("batch_offset", default=0, min=0, max=0xFFFFFFFF,
                             tooltip="Not supported: only 0 (a nonzero value is ignored with a warning)."),
                io.Combo.Input("noise_type", options=["default", "FreeNoise"], default="default",
                               tooltip="FreeNoise: context windows share shuffled noise (the context options' "
                                       "freenoise switch)."),
                io.Combo.Input("seed_gen", options=["comfy", "auto1111"], default="comfy",
                               tooltip="comfy: ComfyUI's noise; auto1111: each frame's noise from the seed and the "
                                       "frame's index (Per-Frame Noise)."),
                io.Int.Input("seed_offset", default=0, min=-0xFFFFFFFF, max=0xFFFFFFFF,
                             tooltip="Not supported: only 0 (a nonzero value is ignored with a warning)."),
                io.Boolean.Input("adapt_denoise_steps", default=False,
                                 tooltip="Not supported (ignored with a warning when on)."),
            ],
            outputs=[SampleSettingsType.Output(display_name="settings")],
        )

    @classmethod
    def execute(cls, batch_offset: int, noise_type: str, seed_gen: str, seed_offset: int,
                adapt_denoise_steps: bool) -> io.NodeOutput:
        for name, value, harmless in (("batch_offset", batch_offset, 0), ("seed_offset", seed_offset, 0),
                                      ("adapt_denoise_steps", adapt_denoise_steps, False)):
            if value != harmless:
                log.warning("%s: %s = %r has no equivalent here and is ignored", cls.NAME, name, value)
        return io.NodeOutput(SampleSettings(noise_mode="per_frame" if seed_gen == "auto1111" else "comfyui",
                                            freenoise=noise_type == "FreeNoise"))


class MotionScale(io.ComfyNode):
    NAME = "Motion Scale"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=node_id("MotionScale"),
            display_name=display_name(cls.NAME),
            category=CATEGORY_MIGRATED,
            **search_aliases("Multival Dynamic", "Multival", "motion scale"),
            description="One motion scale, optionally per region through a mask (the leading pack's Multival). "
                        "Motion Scale Schedule also varies it over frames and blocks.",
            inputs=[
                io.Float.Input("float_val", default=1.0, min=0.0, max=100.0, step=0.001,
                               tooltip="The scale: 1 keeps the motion, 0 removes it."),
                io.Mask.Input("mask_optional", optional=True,
                              tooltip="Scale per pixel: the mask's value times float_val."),
            ],
            outputs=[MotionScaleType.Output(display_name="MULTIVAL")],
        )

    @classmethod
    def validate_inputs(cls, float_val=None) -> bool | str:
        return validate_floats(cls, float_val=float_val)

    @classmethod
    def execute(cls, float_val: float, mask_optional=None) -> io.NodeOutput:
        require_finite(cls, float_val=float_val)
        return io.NodeOutput(MotionScaleSchedule(keyframes=((0, float(float_val)),), mask=mask_optional))


NODES = [AnimateDiffLoader, MotionLoRAList, PrepareMotionModule, UseMotionModule, SampleSettingsNode, MotionScale]
