"""Load Motion Module, Apply Motion Module, Motion LoRA Loader: the user-facing contract over `motion/`."""

from __future__ import annotations

import logging
import os

from comfy_api.latest import io, ui

from ..host import folders
from ..motion import beta_schedules, loader, lora
from ..motion.fast_path import MODES as FAST_PATH_MODES
from . import motion_apply
from .common import (CATEGORY, advanced, display_name, node_id, owns_sampling, require_finite, search_aliases,
                     validate_floats)
from .types import ContextOptionsType, MotionModuleType, MotionScaleType, require_motion_module


log = logging.getLogger(__name__)

loader.register_model_folders(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class LoadMotionModule(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=node_id("LoadMotionModule"),
            **search_aliases("AnimateDiff", "Load AnimateDiff Model", "AnimateDiff Loader", "motion model"),
            display_name=display_name("Load Motion Module"),
            category=CATEGORY,
            description="Loads an AnimateDiff motion module (v1, v2, v3, AnimateLCM, SDXL, HotShot-XL) and reports the "
                        "format it detected from the file's contents.",
            inputs=[
                io.Combo.Input("model_name", options=folders.model_names(loader.MODELS_FOLDER),
                               tooltip="A motion module file in models/animatediff_models. Pickled files are read "
                                       "without running code; prefer .safetensors."),
            ],
            outputs=[
                MotionModuleType.Output(display_name="MOTION_MODULE", tooltip="The motion module, for Apply Motion Module."),
                io.String.Output(display_name="format", tooltip="The detected format, channels and encoding length."),
            ],
        )

    @classmethod
    def execute(cls, model_name: str) -> io.NodeOutput:
        module = loader.load_motion_module(folders.model_path(loader.MODELS_FOLDER, model_name))
        description = module.format.describe()
        return io.NodeOutput(module, description, ui=ui.PreviewText(description))


class ApplyMotionModule(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=node_id("ApplyMotionModule"),
            **search_aliases("AnimateDiff", "Apply AnimateDiff Model", "Use Evolved Sampling", "AnimateDiff Loader"),
            display_name=display_name("Apply Motion Module"),
            category=CATEGORY,
            description="Returns a copy of the model that samples each latent batch as one video, with the motion "
                        "module's temporal attention inside the UNet. The input model is left unchanged.",
            inputs=[
                io.Model.Input("model", tooltip="An SD1.5 or SDXL model matching the motion module."),
                MotionModuleType.Input("motion_module", tooltip="From Load Motion Module (or Motion LoRA Loader)."),
                ContextOptionsType.Input("context_options", optional=True,
                                         tooltip="Sliding context windows, needed for more frames than the motion "
                                                 "module's positional encoding (24 for v1, 32 for v2/v3)."),
                io.Float.Input("motion_scale", default=1.0, min=0.0, max=10.0, step=0.01,
                               tooltip="Multiplies the motion modules' output (what they add to each frame): 0 "
                                       "removes motion, above 1 strengthens it. AnimateDiff-Evolved calls this "
                                       "'effect'; its 'scale' is attention_key_scale here."),
                io.Combo.Input("beta_schedule", options=list(beta_schedules.SCHEDULES), default="auto",
                               tooltip="Noise schedule for sampling. auto: the one the module was trained with; "
                                       "animatediff: linear 0.00085→0.012 (avoids the washed-out 'grey' look); sd: keep "
                                       "the model's own; lcm: AnimateLCM's LCM sampling; sdxl: scaled_linear "
                                       "0.00085→0.020."),
                io.Combo.Input("fast_path", options=list(FAST_PATH_MODES), default="auto", optional=True,
                               tooltip="auto: on CUDA in fp16/bf16, run the motion modules as one compiled graph "
                                       "with a short-sequence attention (same result within fp16 rounding, faster). "
                                       "Each new size compiles in the background while nothing samples; until then "
                                       "that size runs ComfyUI's attention, so no render waits for it. Elsewhere "
                                       "ComfyUI's attention. off: always ComfyUI's attention, no compilation.",
                                       **advanced()),
                MotionScaleType.Input("motion_scale_schedule", optional=True,
                                      tooltip="From Motion Scale Schedule: motion_scale per frame, per UNet block "
                                              "and per region, multiplied with motion_scale."),
                io.Float.Input("attention_key_scale", default=1.0, min=0.0, max=10.0, step=0.01, optional=True,
                               tooltip="Multiplies the keys of the motion modules' temporal attention: above 1 each "
                                       "frame attends more sharply to the frames most like it, below 1 it averages "
                                       "over all frames. This is AnimateDiff-Evolved's 'scale' (which it used to "
                                       "call motion_scale); our motion_scale is its 'effect'.", **advanced()),
                io.Boolean.Input("live_preview", default=True, optional=True,
                                 tooltip="While sampling, show all frames of the current step in the editor as a "
                                         "small looping animation (ComfyUI's latent preview method, Latent2RGB when "
                                         "previews are off), at most 5% of sampling time."),
            ],
            outputs=[io.Model.Output(tooltip="The model with the motion module; connect it to the sampler.")],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def validate_inputs(cls, motion_scale=None, attention_key_scale=None) -> bool | str:
        return validate_floats(cls, motion_scale=motion_scale, attention_key_scale=attention_key_scale)

    @classmethod
    def execute(cls, model, motion_module, motion_scale: float, beta_schedule: str,
                context_options=None, fast_path: str = "auto", motion_scale_schedule=None,
                attention_key_scale: float = 1.0, live_preview: bool = True) -> io.NodeOutput:
        require_finite(cls, motion_scale=motion_scale, attention_key_scale=attention_key_scale)
        require_motion_module(motion_module, "Apply Motion Module")
        patched = motion_apply.apply_motion_module(model, motion_module, motion_scale, beta_schedule,
                                                   context_options, fast_mode=fast_path,
                                                   scale_schedule=motion_scale_schedule,
                                                   attention_key_scale=attention_key_scale,
                                                   node_id=cls.hidden.unique_id if cls.hidden else None,
                                                   live_preview=live_preview)
        owns_sampling(patched, cls)
        return io.NodeOutput(patched)


class MotionLoRALoader(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=node_id("MotionLoRALoader"),
            **search_aliases("AnimateDiff LoRA", "Load AnimateDiff LoRA", "motion LoRA"),
            display_name=display_name("Motion LoRA Loader"),
            category=CATEGORY,
            description="Adds a motion LoRA (e.g. v2_lora_PanLeft, or one trained with MotionDirector) to a motion "
                        "module; chain several to stack them. Layers the module lacks (a v2 LoRA's mid block on "
                        "v1/v3) are skipped and reported here.",
            inputs=[
                MotionModuleType.Input("motion_module", tooltip="The motion module to add the LoRA to."),
                io.Combo.Input("lora_name", options=folders.model_names(loader.LORA_FOLDER),
                               tooltip="A motion LoRA file in models/animatediff_motion_lora."),
                io.Float.Input("strength", default=1.0, min=-10.0, max=10.0, step=0.01,
                               tooltip="How much of the LoRA's camera motion to add; 0 leaves the module unchanged."),
            ],
            outputs=[MotionModuleType.Output(display_name="MOTION_MODULE",
                                             tooltip="The motion module with the LoRA, for Apply Motion Module.")],
        )

    @classmethod
    def validate_inputs(cls, strength=None) -> bool | str:
        return validate_floats(cls, strength=strength)

    @classmethod
    def execute(cls, motion_module, lora_name: str, strength: float) -> io.NodeOutput:
        require_finite(cls, strength=strength)
        require_motion_module(motion_module, "Motion LoRA Loader")
        path = folders.model_path(loader.LORA_FOLDER, lora_name)
        fit = lora.fit_lora(motion_module, loader.read_state_dict(path, "lora_name"), lora_name)
        report = fit.describe()
        log.log(logging.WARNING if fit.skipped else logging.INFO, "Motion LoRA Loader: %s", report)
        return io.NodeOutput(lora.apply_fit(motion_module, fit, strength), ui=ui.PreviewText(report))


NODES = [LoadMotionModule, ApplyMotionModule, MotionLoRALoader]
