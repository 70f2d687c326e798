"""Motion module families beyond the key layout: distilled modules and the sampling they were trained for, and files
of families AnimateFlow does not run, named with the node to use instead.

What the files allow (docs/motion-module-formats.md and the released files):
- AnimateLCM (`AnimateLCM_sd15_t2v.ckpt`) has no positional-encoding keys at all: told apart by its keys.
- AnimateDiff-Lightning's ComfyUI files (`animatediff_lightning_{1,2,4,8}step_comfyui.safetensors`, distilled from
  v2) are laid out exactly like an fp16 `mm_sd_v15_v2`: 588 tensors, no safetensors metadata (a v2 layout saved in
  fp16 without metadata has their exact size, 908,929,664 bytes). Their weights are all that differs, so they are
  recognised by the file name (or by metadata naming them, for conversions that add it). The `_diffusers` files are
  diffusers MotionAdapter layouts, converted on load (formats.py).
- Families with other parts (CameraCtrl's pose encoder, PIA's conv_in, SparseCtrl's ControlNet, AnimateLCM-I2V's
  image encoder, MotionCtrl, FancyVideo) and files that are not motion modules at all (image LoRAs such as the v3
  adapter, motion LoRAs, checkpoints, ControlNets) are recognised by keys only they have.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LIGHTNING = re.compile(r"lightning[ _.\-]*(\d+)[ _.\-]*steps?", re.IGNORECASE)


@dataclass(frozen=True)
class Recommendation:
    """The sampling a distilled module was trained for."""

    sampler: str
    scheduler: str
    steps: str
    cfg: str
    note: str = ""

    def text(self) -> str:
        note = f" {self.note}" if self.note else ""
        return (f"Trained for: sampler {self.sampler}, scheduler {self.scheduler}, {self.steps} steps, "
                f"cfg {self.cfg}.{note}")


ANIMATELCM = Recommendation(
    "lcm", "sgm_uniform", "4-8", "1.0-2.0",
    "beta_schedule auto (lcm); AnimateLCM's own image LoRA (AnimateLCM_sd15_t2v_lora) through LoraLoaderModelOnly "
    "at about 0.8 sharpens it.")


def lightning(steps: int) -> Recommendation:
    if steps == 1:
        count, note = "1", "The 1-step model is a research preview; the 2-, 4- and 8-step models give better videos."
    elif steps == 2:
        count, note = "2 (3 also works well)", ""
    else:
        count, note = str(steps), ""
    return Recommendation("euler", "sgm_uniform", count, "1.0",
                          f"beta_schedule auto (animatediff: linear 0.00085-0.012, as distilled). {note}".strip())


def lightning_steps(file_name: str, metadata: dict | None) -> tuple[int, str] | None:
    """(steps, how it was recognised) for an AnimateDiff-Lightning file, from metadata naming it or the file name."""
    for key, value in (metadata or {}).items():
        if isinstance(value, str) and key != "animateflow_fixture" and (match := _LIGHTNING.search(value)):
            return int(match[1]), f"metadata '{key}'"
    match = _LIGHTNING.search(file_name)
    if match:
        return int(match[1]), "file name (its contents are laid out exactly like mm_sd_v15_v2)"
    return None


def _any(keys, pattern: str) -> bool:
    regex = re.compile(pattern)
    return any(regex.search(k) for k in keys)


def foreign_family(keys: list[str], file_name: str) -> tuple[str, str] | None:
    """(problem, fix): the family of a file AnimateFlow does not load as a motion module and what to use instead,
    or None when the keys name no family we know."""
    motion = _any(keys, r"(^|\.)motion_modules\.\d+\.|temporal_attentions\.\d+\.")
    what = None
    if _any(keys, r"qkv_merge|^encoder_down_|^encoder_conv_in"):
        what = ("a CameraCtrl model (camera pose encoder and attention merges for a v3 module)",
                "AnimateDiff-Evolved's 'Load AnimateDiff+CameraCtrl Model'")
    elif _any(keys, r"cc_projection"):
        what = ("a MotionCtrl model (camera-motion projections)", "AnimateDiff-Evolved's MotionCtrl nodes")
    elif _any(keys, r"^FancyVideo$|^fps_embedding\.|^motion_embedding\."):
        what = ("a FancyVideo model", "AnimateDiff-Evolved's FancyVideo nodes")
    elif _any(keys, r"^controlnet_") and motion:
        what = ("a SparseCtrl model (a ControlNet with motion modules)",
                "a SparseCtrl loader such as ComfyUI-Advanced-ControlNet's 'Load SparseCtrl Model', with a v3 "
                "motion module here")
    elif _any(keys, r"^controlnet_|^control_model\.|^input_hint_block\.|^zero_convs\."):
        what = ("a ControlNet", "ComfyUI's 'Load ControlNet Model'")
    elif _any(keys, r"^img_encoder\.") and motion:
        what = ("AnimateLCM-I2V (its image encoder is not run here)",
                "AnimateDiff-Evolved's 'Apply AnimateLCM-I2V Model', or AnimateLCM_sd15_t2v here")
    elif _any(keys, r"^conv_in\.weight$") and motion:
        what = ("a PIA model (image-conditioned input convolution)",
                "AnimateDiff-Evolved's 'Apply AnimateDiff-PIA Model'")
    elif motion and _any(keys, r"processor\.to_(q|k|v|out)_lora\.|_lora\.(up|down)\.weight$"):
        what = ("a motion LoRA", "AnimateFlow's motion LoRA loader, on the loaded motion module")
    elif _any(keys, r"\.attentions\.\d+\..*processor\.to_(q|k|v|out)_lora\."):
        what = ("an image LoRA for the SD UNet in diffusers' attention-processor format, such as AnimateDiff v3's "
                "adapter (v3_sd15_adapter)", "ComfyUI's 'LoraLoaderModelOnly' on the checkpoint's MODEL")
    elif _any(keys, r"^lora_(unet|te\d?)_|\.lora_(up|down|A|B)\.weight$|\.lora\.(up|down)\.weight$|\.alpha$"):
        what = ("an image LoRA (e.g. AnimateLCM_sd15_t2v_lora or an LCM LoRA)",
                "ComfyUI's 'LoraLoaderModelOnly' (or 'Load LoRA') on the checkpoint's MODEL")
    elif _any(keys, r"^model\.diffusion_model\.|^first_stage_model\.|^cond_stage_model\."):
        what = ("a full Stable Diffusion checkpoint", "ComfyUI's 'Load Checkpoint'")
    elif _any(keys, r"^(conv_in|time_embedding|down_blocks\.\d+\.(resnets|attentions))\.") and not motion:
        what = ("a diffusers UNet", "ComfyUI's 'Load Diffusion Model' (UNETLoader)")
    if what is None:
        return None
    family, instead = what
    return (f"{file_name} is {family}, not a motion module AnimateFlow runs", f"use {instead} for it; this node "
            "loads AnimateDiff motion modules (v1, v2, v3, AnimateLCM, AnimateDiff-Lightning, SDXL, HotShot-XL).")
