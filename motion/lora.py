"""Motion LoRAs as weight patches on the motion module's own ModelPatcher.

Patching a clone of the module's patcher leaves the loaded module, which other graphs may share, as it was:
ComfyUI applies the low-rank updates when the module is loaded for a run and removes them afterwards.

Key layouts read (each names a module weight and an up or a down matrix):
- the official v2 LoRAs (v2_lora_PanLeft ...): `<attention block>.processor.to_q_lora.down.weight`, likewise
  to_k, to_v, to_out (→ the module's `to_out.0`);
- MotionDirector LoRAs (AnimateDiff-MotionDirector and the ComfyUI trainer built on it, any module version):
  the same processor style written from the trained layer's own name, so it also reaches the feed-forward:
  `attention_blocks.0.to_out.processor.0_lora.up.weight` (→ `to_out.0`), `ff.net.0.processor.proj_lora...`
  (→ `ff.net.0.proj`), `ff.net.processor.2_lora...` (→ `ff.net.2`);
- the raw trainer forms `<layer>.lora_up/lora_down.weight` and PEFT's `<layer>.lora_B/lora_A.weight`.
A LoRA fits a module when every layer the two share has `up @ down` of that layer's shape and they share at
least one. Layers the module lacks are skipped and reported: the official LoRAs were trained on v2 and also
patch its mid block, which v1 and v3 lack (the leading pack skips those too).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from ..host import models
from .errors import MotionFormatError
from .loader import MotionModule

_PROCESSOR_KEY = re.compile(r"^(?P<parent>.+)\.processor\.(?P<layer>[^.]+)_lora\.(?P<side>down|up)\.weight$")
_RAW_KEY = re.compile(r"^(?P<layer>.+)\.lora_(?P<side>down|up|A|B)\.weight$")
_SIDES = {"down": "down", "up": "up", "A": "down", "B": "up"}


@dataclass(frozen=True)
class LoRAFit:
    """What a LoRA does to one module: the (up, down) pairs that apply, by module weight key, and what it skips."""

    lora_name: str
    module_name: str
    pairs: dict[str, tuple[torch.Tensor, torch.Tensor]]
    skipped: tuple[str, ...]

    def describe(self) -> str:
        """One line for the node's UI and the log."""
        text = f"{self.lora_name}: {len(self.pairs)} layers patched on {self.module_name}"
        if not self.skipped:
            return text
        mid = sum(1 for k in self.skipped if k.startswith("mid_block."))
        other = [k for k in self.skipped if not k.startswith("mid_block.")]
        parts = [f"{mid} mid-block layers (this module has no mid block; the LoRA was trained on v2)"] if mid else []
        if other:
            parts.append(f"{len(other)} layers this module lacks (e.g. {other[0]})")
        return f"{text}; skipped {' and '.join(parts)}"


def _module_key(lora_key: str) -> tuple[str, str] | None:
    """(module weight key, 'up' or 'down') that a LoRA key names, or None for a key of no layout we read."""
    m = _PROCESSOR_KEY.match(lora_key) or _RAW_KEY.match(lora_key)
    if m is None:
        return None
    layer = f"{m['parent']}.{m['layer']}" if "parent" in m.groupdict() else m["layer"]
    if layer.endswith(".to_out"):
        layer += ".0"
    return f"{layer}.weight", _SIDES[m["side"]]


def lora_pairs(sd: dict[str, torch.Tensor], lora_name: str) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Module weight key → (up, down) from a LoRA in any of the layouts above."""
    sides: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in sd.items():
        named = _module_key(key)
        if named is None:
            raise MotionFormatError(f"{lora_name} is not a motion LoRA (unexpected key {key})", "pick a motion LoRA "
                                    "file (e.g. v2_lora_PanLeft) in models/animatediff_motion_lora.", input="lora_name")
        sides.setdefault(named[0], {})[named[1]] = value
    incomplete = [k for k, v in sides.items() if len(v) != 2]
    if incomplete or not sides:
        raise MotionFormatError(f"{lora_name} is damaged: {incomplete[:2] or 'no keys'} lack an up or down matrix",
                                "download it again or pick another file.", input="lora_name")
    return {k: (v["up"], v["down"]) for k, v in sides.items()}


def fit_lora(motion: MotionModule, lora_sd: dict[str, torch.Tensor], lora_name: str) -> LoRAFit:
    """The pairs of `lora_sd` that patch `motion`; refuses a LoRA of another shape or with nothing to patch."""
    pairs = lora_pairs(lora_sd, lora_name)
    weights = motion.model.state_dict()
    shared = {k: v for k, v in pairs.items() if k in weights}
    wrong = [k for k, (up, down) in shared.items()
             if tuple(weights[k].shape) != (up.shape[0], down.shape[1]) or up.shape[1] != down.shape[0]]
    where = f"the motion module {motion.name} ({motion.format.name})"
    if wrong:
        raise MotionFormatError(
            f"{lora_name} does not fit {where}: {len(wrong)} layers have other shapes (e.g. {wrong[0]}), so it was "
            f"trained for another base model", f"use a motion LoRA made for {motion.format.family} modules.",
            input="lora_name")
    if not shared:
        raise MotionFormatError(
            f"{lora_name} patches none of the layers of {where} (it names {len(pairs)}, e.g. {next(iter(pairs))})",
            "pick a LoRA trained for this kind of module (v2 LoRAs fit v1, v2 and v3).", input="lora_name")
    skipped = tuple(k for k in pairs if k not in weights)
    return LoRAFit(lora_name=lora_name, module_name=motion.name, pairs=shared, skipped=skipped)


def apply_fit(motion: MotionModule, fit: LoRAFit, strength: float) -> MotionModule:
    """The module with `strength · up @ down` added to each layer of the fit; strength 0 returns it untouched."""
    if strength == 0:
        return motion
    patcher = motion.patcher.clone()
    patcher.add_patches(models.lora_patches(fit.pairs), strength_patch=float(strength))
    return MotionModule(patcher=patcher, format=motion.format, name=f"{motion.name} + {fit.lora_name}")

