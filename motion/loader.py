"""Reading motion module and motion LoRA files safely, and wrapping a module for ComfyUI's model management.

Pickled checkpoints (.ckpt/.pth/.pt/.bin) are read with `torch.load(weights_only=True)`: its unpickler only
rebuilds tensors and plain containers, so a file whose pickle would run code is refused instead of executed.
The loaded module lives in a ModelPatcher so ComfyUI moves, offloads and counts it with the UNet it is
applied to, and so motion LoRAs can be weight patches on it rather than edits of a module others share.
"""

from __future__ import annotations

import logging
import os
import pickle
from dataclasses import dataclass

import safetensors.torch
import torch

from ..host import folders, models
from . import device_clone
from .errors import MotionFormatError
from .formats import MotionFormat, canonical_state_dict
from .model import MotionModel

log = logging.getLogger(__name__)

MODELS_FOLDER = "animatediff_models"
LORA_FOLDER = "animatediff_motion_lora"
PICKLE_SUFFIXES = (".ckpt", ".pth", ".pt", ".bin")
SUFFIXES = (".safetensors", *PICKLE_SUFFIXES)
_WRAPPERS = ("state_dict", "module")
_KEY_PREFIXES = ("module.",)


class UnsafeCheckpointError(MotionFormatError):
    """A pickled file that would execute code when loaded."""


@dataclass(frozen=True)
class MotionModule:
    """The MOTION_MODULE value: the module in its ModelPatcher, what it is, and where it came from."""

    patcher: models.ModelPatcher
    format: MotionFormat
    name: str

    @property
    def model(self) -> MotionModel:
        return self.patcher.model


def register_model_folders(pack_dir: str) -> None:
    """Add our folders beside ComfyUI's (and the pack-local models/), as AnimateDiff-Evolved names them."""
    for folder in (MODELS_FOLDER, LORA_FOLDER):
        folders.add_model_folder(folder, [os.path.join(folders.models_dir(), folder),
                                          os.path.join(pack_dir, "models", folder)], SUFFIXES)


def read_state_dict(path: str, input: str = "model_name") -> dict[str, torch.Tensor]:
    """Tensors of a file, unwrapped from `state_dict`/`module` nesting and `module.` key prefixes; `input` is the
    input that named the file, for the errors."""
    name = os.path.basename(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in SUFFIXES:
        raise MotionFormatError(f"{name} has an unsupported extension", f"use one of {', '.join(SUFFIXES)}.",
                                input=input)
    try:
        if suffix == ".safetensors":
            sd = safetensors.torch.load_file(path, device="cpu")
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise UnsafeCheckpointError(
            f"refused to load {name}: its pickle contains code or objects other than tensors, which could run on "
            f"your machine ({str(e).splitlines()[0]})", "use a .safetensors version of the file from a source you "
            "trust.", input=input) from e
    except (safetensors.SafetensorError, RuntimeError, EOFError, OSError, ValueError) as e:
        # Truncated downloads and files of another kind end up here, each library with its own wording.
        raise MotionFormatError(
            f"cannot read {name}: the file is damaged, truncated or not a {suffix} checkpoint "
            f"({str(e).splitlines()[0] if str(e) else type(e).__name__})", "download it again or pick another file.",
            input=input) from e
    while isinstance(sd, dict):
        nested = [w for w in _WRAPPERS if isinstance(sd.get(w), dict)]
        if not nested:
            break
        sd = sd[nested[0]]
    if not isinstance(sd, dict):
        raise MotionFormatError(f"{name} does not hold a state dict of tensors", "pick a model file.", input=input)
    out = {}
    for key, value in sd.items():
        if not isinstance(value, torch.Tensor):
            continue
        for prefix in _KEY_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
        out[key] = value
    return out


def read_metadata(path: str) -> dict[str, str]:
    """A .safetensors file's metadata (empty for other files and files without any)."""
    if not path.lower().endswith(".safetensors"):
        return {}
    try:
        with safetensors.safe_open(path, framework="pt") as f:
            return dict(f.metadata() or {})
    except (safetensors.SafetensorError, OSError):
        return {}


def build_motion_module(sd: dict[str, torch.Tensor], name: str, dtype: torch.dtype | None = None,
                        metadata: dict | None = None) -> MotionModule:
    """A MotionModule from a raw state dict (any supported layout); `metadata` may name a variant."""
    sd, fmt = canonical_state_dict(sd, name, metadata)
    dtype = dtype or models.storage_dtype()
    model = MotionModel(fmt.layout, dtype=dtype)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.endswith("pos_encoder.pe")]
    if missing or unexpected:
        raise MotionFormatError(
            f"{name} ({fmt.name}) is incomplete or damaged: missing {missing[:3]}, unexpected {unexpected[:3]}",
            "download it again or pick another file.", input="model_name")
    model.eval().requires_grad_(False)
    patcher = models.patcher_for(model)
    device_clone.register(patcher)
    return MotionModule(patcher=patcher, format=fmt, name=name)


def load_motion_module(path: str) -> MotionModule:
    name = os.path.basename(path)
    module = build_motion_module(read_state_dict(path), name, metadata=read_metadata(path))
    log.info("Loaded motion module %s: %s", name, module.format.describe())
    return module
