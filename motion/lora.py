"""Motion LoRAs (v2 style, e.g. v2_lora_PanLeft) as weight patches on the motion module's own ModelPatcher.

Patching a clone of the module's patcher leaves the loaded module, which other graphs may share, as it was:
ComfyUI applies the low-rank updates when the module is loaded for a run and removes them afterwards.
"""

from __future__ import annotations

import re

import torch
from comfy.weight_adapter.lora import LoRAAdapter

from .formats import MotionFormatError
from .loader import MotionModule

NODE = "Motion LoRA Loader"
_LORA_KEY = re.compile(r"^(?P<prefix>.+)\.processor\.(?P<proj>to_q|to_k|to_v|to_out)_lora\.(?P<side>down|up)\.weight$")


def lora_pairs(sd: dict[str, torch.Tensor], lora_name: str) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Module weight key → (up, down) from a LoRA in the attention-processor layout."""
    sides: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in sd.items():
        m = _LORA_KEY.match(key)
        if not m:
            raise MotionFormatError(f"{NODE}: {lora_name} is not a motion LoRA (unexpected key {key}). "
                                    "Pick a motion LoRA file (e.g. v2_lora_PanLeft) in models/animatediff_motion_lora.")
        proj = "to_out.0" if m["proj"] == "to_out" else m["proj"]
        sides.setdefault(f"{m['prefix']}.{proj}.weight", {})[m["side"]] = value
    incomplete = [k for k, v in sides.items() if len(v) != 2]
    if incomplete or not sides:
        raise MotionFormatError(f"{NODE}: {lora_name} is damaged: {incomplete[:2] or 'no keys'} lack an up or down matrix.")
    return {k: (v["up"], v["down"]) for k, v in sides.items()}


def apply_motion_lora(motion: MotionModule, lora_sd: dict[str, torch.Tensor], lora_name: str,
                      strength: float) -> MotionModule:
    """The module with `strength · up @ down` added to each attention projection the LoRA names.

    The LoRA fits a module when every weight it patches exists in the module and `up @ down` has that
    weight's shape. Otherwise nothing is applied and the error says what is missing: official motion LoRAs
    were trained on v2 and also patch its mid block, which v1 and v3 modules lack. Strength 0 returns the
    module untouched, so it is exactly a no-op.
    """
    pairs = lora_pairs(lora_sd, lora_name)
    weights = motion.model.state_dict()
    missing = [k for k in pairs if k not in weights]
    wrong = [k for k, (up, down) in pairs.items()
             if k in weights and tuple(weights[k].shape) != (up.shape[0], down.shape[1])]
    if missing or wrong:
        detail = (f"{len(missing)} weights it patches do not exist there (e.g. {missing[0]})" if missing else
                  f"{len(wrong)} weights have other shapes (e.g. {wrong[0]})")
        raise MotionFormatError(
            f"{NODE}: {lora_name} does not fit the motion module {motion.name} ({motion.format.name}): {detail}. "
            "Motion LoRAs were trained for v2 modules (mm_sd_v15_v2); load one of those.")
    if strength == 0:
        return motion
    patcher = motion.patcher.clone()
    patches = {k: LoRAAdapter(set(), (up, down, None, None, None, None)) for k, (up, down) in pairs.items()}
    patcher.add_patches(patches, strength_patch=float(strength))
    return MotionModule(patcher=patcher, format=motion.format, name=f"{motion.name} + {lora_name}")
