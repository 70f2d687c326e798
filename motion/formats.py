"""Telling motion module formats apart from their state dict keys alone, and bringing them to one key layout.

File names lie (users rename files), so the format comes from what the keys say: number of UNet levels
(4 → SD1.5, 3 → SDXL), presence of a mid block, and the length of the stored positional encoding.
HotShot-XL and diffusers' MotionAdapter files name their modules differently; they are renamed to the official
layout so one model class serves all. Only where the keys cannot tell (AnimateDiff-Lightning is laid out exactly
like v2) does the file name or metadata name the variant (families.py), and the description says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from . import families
from .errors import MotionFormatError
from .model import MotionLayout

ANIMATELCM_PE_LENGTH = 64

_MODULE_KEY = re.compile(
    r"^(?P<block>down_blocks\.(?P<down>\d+)|mid_block|up_blocks\.(?P<up>\d+))"
    r"\.motion_modules\.(?P<index>\d+)\.temporal_transformer\.(?P<rest>.+)$"
)
_PE_SUFFIX = "pos_encoder.pe"


@dataclass(frozen=True)
class MotionFormat:
    """What a checkpoint is, as detected from its keys."""

    name: str  # "v1", "v2", "v3", "AnimateLCM", "SDXL", "HotShot-XL", or "SD1.5 (unrecognised variant)"
    family: str  # "SD1.5" or "SDXL": the base model the module was trained on
    layout: MotionLayout
    pe_stored: bool
    groupnorm_over_frames: bool  # v1 was trained with UNet ResBlock GroupNorm statistics over all frames
    default_betas: str  # the beta schedule "auto" resolves to
    recommendation: families.Recommendation | None = None  # the sampling a distilled module was trained for

    def describe(self) -> str:
        down = "/".join(str(c) for c in self.layout.down_channels)
        count = 5 * len(self.layout.down_channels) + int(self.layout.has_mid)
        pe = "stored" if self.pe_stored else "not in the file, recomputed"
        norm = "over all frames of a video" if self.groupnorm_over_frames else "per frame"
        text = (f"{self.name} motion module for {self.family}: {count} modules (channels {down}, "
                f"{'with' if self.layout.has_mid else 'no'} mid block), positional encoding "
                f"{self.layout.pe_length} frames ({pe}), UNet GroupNorm {norm}, auto beta schedule: {self.default_betas}")
        return f"{text}. {self.recommendation.text()}" if self.recommendation is not None else text


def _from_hotshot(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in sd.items():
        key = re.sub(r"\.temporal_attentions\.(\d+)\.", r".motion_modules.\1.temporal_transformer.", key)
        out[key.replace("pos_encoder.positional_encoding", _PE_SUFFIX)] = value
    return out


_DIFFUSERS_KEY = re.compile(r"^(?P<prefix>(down_blocks\.\d+|mid_block|up_blocks\.\d+)\.motion_modules\.\d+\.)"
                            r"(?P<rest>(norm|proj_in|proj_out|transformer_blocks)\..+)$")
_DIFFUSERS_BLOCK = (("attn1.", "attention_blocks.0."), ("attn2.", "attention_blocks.1."), ("norm1.", "norms.0."),
                    ("norm2.", "norms.1."), ("norm3.", "ff_norm."))


def _from_diffusers(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """diffusers' MotionAdapter names (e.g. AnimateDiff-Lightning's _diffusers files) → the official ones: the
    module's parts move under `temporal_transformer.`, attn1/attn2 → attention_blocks.0/1, norm1/2/3 →
    norms.0/norms.1/ff_norm, and the block's one `pos_embed.pe` serves both attention blocks. Other keys stay."""
    out = {}
    for key, value in sd.items():
        m = _DIFFUSERS_KEY.match(key)
        if not m:
            out[key] = value
            continue
        rest = m["rest"]
        if rest.startswith("transformer_blocks."):
            _, index, part = rest.split(".", 2)
            if part == "pos_embed.pe":
                for a in (0, 1):
                    out[f"{m['prefix']}temporal_transformer.transformer_blocks.{index}.attention_blocks.{a}."
                        f"{_PE_SUFFIX}"] = value
                continue
            for old, new in _DIFFUSERS_BLOCK:
                if part.startswith(old):
                    part = new + part[len(old):]
                    break
            rest = f"transformer_blocks.{index}.{part}"
        out[f"{m['prefix']}temporal_transformer.{rest}"] = value
    return out


def canonical_state_dict(sd: dict[str, torch.Tensor], file_name: str,
                         metadata: dict | None = None) -> tuple[dict[str, torch.Tensor], MotionFormat]:
    """The state dict in the official key layout (missing encodings filled in) and its detected format."""
    hotshot = any(".temporal_attentions." in k for k in sd)
    if hotshot:
        sd = _from_hotshot(sd)
    diffusers = any(_DIFFUSERS_KEY.match(k) for k in sd)
    if diffusers:
        sd = _from_diffusers(sd)
    foreign = families.foreign_family(list(sd), file_name)
    if foreign:
        raise MotionFormatError(*foreign, input="model_name")
    unknown = [k for k in sd if not _MODULE_KEY.match(k)]
    if unknown or not sd:
        example = ", ".join(unknown[:3]) if unknown else "(no keys)"
        raise MotionFormatError(
            f"{file_name} is not an AnimateDiff motion module (unexpected keys such as {example})",
            "pick a motion module file (e.g. mm_sd_v15_v2) in models/animatediff_models.", input="model_name")

    channels: dict[str, int] = {}
    pe_lengths = set()
    down_levels = set()
    for key, value in sd.items():
        m = _MODULE_KEY.match(key)
        prefix = key[: -len(m["rest"])]
        if m["down"] is not None:
            down_levels.add(int(m["down"]))
        if m["rest"] == "proj_in.weight":
            channels[prefix] = value.shape[0]
        if m["rest"].endswith(_PE_SUFFIX):
            pe_lengths.add(value.shape[1])
    downs = sorted(down_levels)
    down_channels = tuple(channels.get(f"down_blocks.{i}.motion_modules.0.temporal_transformer.", 0) for i in downs)
    has_mid = any(p.startswith("mid_block.") for p in channels)
    if downs != list(range(len(downs))) or len(downs) not in (3, 4) or 0 in down_channels:
        raise MotionFormatError(f"{file_name} has motion modules for UNet levels {downs}, not the 4 of SD1.5 or the "
                                "3 of SDXL", "the file may be damaged or of an unsupported architecture: download "
                                "it again or pick another.", input="model_name")
    if len(pe_lengths) > 1:
        raise MotionFormatError(f"{file_name} stores positional encodings of different lengths {sorted(pe_lengths)}",
                                "the file is damaged: download it again.", input="model_name")

    family = "SD1.5" if len(downs) == 4 else "SDXL"
    pe_stored = bool(pe_lengths)
    pe_length = pe_lengths.pop() if pe_lengths else ANIMATELCM_PE_LENGTH
    over_frames = False
    betas = "animatediff"
    recommendation = None
    lightning = families.lightning_steps(file_name, metadata) if family == "SD1.5" and has_mid and pe_stored else None
    if hotshot:
        name, betas = "HotShot-XL", "sd"
    elif family == "SDXL":
        name, betas = "SDXL (mm_sdxl_v10_beta layout)", "sdxl"
    elif not pe_stored:
        name, betas, recommendation = "AnimateLCM", "lcm", families.ANIMATELCM
    elif lightning is not None:
        steps, source = lightning
        name = f"AnimateDiff-Lightning {steps}-step (v2 layout; recognised by its {source})"
        recommendation = families.lightning(steps)
    elif has_mid:
        name = "v2 (mm_sd_v15_v2 layout)"
    elif pe_length == 24:
        name, over_frames = "v1 (mm_sd_v14 / mm_sd_v15 layout)", True
    elif pe_length == 32:
        name = "v3 (mm_sd_v15_v3 layout)"
    else:
        name = "SD1.5 (unrecognised variant)"
    layout = MotionLayout(down_channels=down_channels, has_mid=has_mid, pe_length=pe_length)
    fmt = MotionFormat(name=name, family=family, layout=layout, pe_stored=pe_stored,
                       groupnorm_over_frames=over_frames, default_betas=betas, recommendation=recommendation)
    return sd, fmt
