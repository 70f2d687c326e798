"""Deterministic random-weight models with the real architectures, for tests and the demo.

No real weights can be downloaded here, so every model the pack touches is generated: an SD1.5
checkpoint built from ComfyUI's own classes (so `CheckpointLoaderSimple` detects it as SD1.5) and
motion modules with exactly the official key names and shapes of each format. Each tensor is drawn
from a generator seeded by (seed, key), so a file is the same whatever order keys are produced in.

Initialisation follows `decisions.md`: matrices ~ N(0, 1/fan_in), norms at weight 1 / bias 0,
other biases small, and the motion module's `proj_out` non-zero but scaled by 0.1 (a zero
`proj_out` would make the module an identity and hide every bug).
"""

from __future__ import annotations

import logging
import math
import os
import sys
import zlib
from pathlib import Path
from typing import Iterable

import torch

log = logging.getLogger(__name__)

SD15_CHECKPOINT = "v1-5-pruned-emaonly.safetensors"

# Official file names per motion module format (what a user would have in animatediff_models).
MOTION_MODULE_FILES = {
    "v1": "mm_sd_v15.ckpt",
    "v14": "mm_sd_v14.ckpt",
    "v2": "mm_sd_v15_v2.safetensors",
    "v3": "mm_sd_v15_v3.safetensors",
    "animatelcm": "AnimateLCM_sd15_t2v.ckpt",
    "sdxl": "mm_sdxl_v10_beta.safetensors",
    "hotshot": "hsxl_temporal_layers.safetensors",
    "lightning4": "animatediff_lightning_4step_comfyui.safetensors",
    "lightning4_diffusers": "animatediff_lightning_4step_diffusers.safetensors",
}
# Encoding length stored per format (0: none stored, AnimateLCM recomputes it) and the formats with a mid block.
# AnimateDiff-Lightning's ComfyUI files are laid out exactly like an fp16 v2 module without metadata (588
# tensors; that layout saved in fp16 is 908,929,664 bytes, their size); its _diffusers files are diffusers'
# MotionAdapter layout of the same. AnimateLCM has a mid block (its diffusers config: use_motion_mid_block).
PE_LENGTHS = {"v1": 24, "v14": 24, "v2": 32, "v3": 32, "sdxl": 32, "hotshot": 24, "animatelcm": 0, "lightning4": 32,
              "lightning4_diffusers": 32}
WITH_MID = ("v2", "animatelcm", "lightning4", "lightning4_diffusers")
DIFFUSERS_FORMATS = ("lightning4_diffusers",)
MOTION_LORA_FILE = "v2_lora_PanLeft.ckpt"
MOTION_DIRECTOR_LORA_FILE = "500_motion_director_lora_r8_temporal_unet.safetensors"
MOTION_DIRECTOR_METADATA = {"model_type": "motion_director", "rank": "8"}

SD15_DOWN_CHANNELS = (320, 640, 1280, 1280)
SDXL_DOWN_CHANNELS = (320, 640, 1280)


# Written into every generated .safetensors file, so nothing mistakes a stand-in for real weights.
STAND_IN_METADATA = {"animateflow_fixture": "random weights, not a trained model"}


def is_stand_in(path: Path) -> bool:
    """True for a .safetensors file this module generated."""
    import safetensors

    with safetensors.safe_open(str(path), framework="pt") as f:
        return (f.metadata() or {}).get("animateflow_fixture") is not None


def _generator(seed: int, key: str) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003) ^ zlib.crc32(key.encode()))


def random_tensor(key: str, shape: Iterable[int], seed: int) -> torch.Tensor:
    """One tensor of a random model, initialised by what its key says it is."""
    shape = tuple(shape)
    gen = _generator(seed, key)
    name = key.rsplit(".", 1)[-1]
    if name in ("pe", "positional_encoding", "position_ids"):
        raise ValueError(f"{key} is a buffer, not a weight")
    if len(shape) == 1:
        if name == "weight":
            return torch.ones(shape)
        if ".norm" in key or "norm." in key or key.endswith("ln.bias") or "layer_norm" in key:
            return torch.zeros(shape)
        return torch.randn(shape, generator=gen) * 0.02
    fan_in = math.prod(shape[1:])
    scale = 1.0 / math.sqrt(fan_in)
    if "proj_out" in key and "temporal" in key:
        scale *= 0.1
    return torch.randn(shape, generator=gen) * scale


def sinusoidal_encoding(length: int, channels: int) -> torch.Tensor:
    """AnimateDiff's positional encoding, [1, length, channels], straight from its formula:
    pe[p, 2i] = sin(p / 10000^(2i / channels)) and pe[p, 2i + 1] = cos(p / 10000^(2i / channels)).

    Written element by element in plain Python floats, on purpose unlike the vectorised exp/log form of the
    pack's `motion/model.py`, so the loader's recomputation (for files without `pe` buffers) is checked against a
    source that can disagree with it (tests/test_positional_encoding.py).
    """
    rows = []
    for position in range(length):
        row = []
        for channel in range(channels):
            even = channel - channel % 2
            angle = position / 10000.0 ** (even / channels)
            row.append(math.sin(angle) if channel % 2 == 0 else math.cos(angle))
        rows.append(row)
    return torch.tensor([rows], dtype=torch.float64).float()


def _module_shapes(c: int) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {
        "norm.weight": (c,), "norm.bias": (c,),
        "proj_in.weight": (c, c), "proj_in.bias": (c,),
        "proj_out.weight": (c, c), "proj_out.bias": (c,),
    }
    block = "transformer_blocks.0."
    for a in (0, 1):
        attn = f"{block}attention_blocks.{a}."
        for proj in ("to_q", "to_k", "to_v"):
            shapes[f"{attn}{proj}.weight"] = (c, c)
        shapes[f"{attn}to_out.0.weight"] = (c, c)
        shapes[f"{attn}to_out.0.bias"] = (c,)
        shapes[f"{block}norms.{a}.weight"] = (c,)
        shapes[f"{block}norms.{a}.bias"] = (c,)
    shapes[f"{block}ff.net.0.proj.weight"] = (8 * c, c)
    shapes[f"{block}ff.net.0.proj.bias"] = (8 * c,)
    shapes[f"{block}ff.net.2.weight"] = (c, 4 * c)
    shapes[f"{block}ff.net.2.bias"] = (c,)
    shapes[f"{block}ff_norm.weight"] = (c,)
    shapes[f"{block}ff_norm.bias"] = (c,)
    return shapes


def motion_module_places(fmt: str) -> list[tuple[str, int]]:
    """(key prefix, channels) of every motion module a format has, in the official naming."""
    down = SDXL_DOWN_CHANNELS if fmt in ("sdxl", "hotshot") else SD15_DOWN_CHANNELS
    places = []
    for i, c in enumerate(down):
        for j in range(2):
            places.append((f"down_blocks.{i}.motion_modules.{j}.", c))
    if fmt in WITH_MID:
        places.append(("mid_block.motion_modules.0.", 1280))
    for i, c in enumerate(reversed(down)):
        for j in range(3):
            places.append((f"up_blocks.{i}.motion_modules.{j}.", c))
    return places


_DIFFUSERS_NAMES = (("attention_blocks.0.", "attn1."), ("attention_blocks.1.", "attn2."), ("norms.0.", "norm1."),
                    ("norms.1.", "norm2."), ("ff_norm.", "norm3."))


def _diffusers_key(key: str) -> str | None:
    """An official motion module key in diffusers' MotionAdapter naming; None for the second attention block's
    encoding (diffusers keeps one `pos_embed.pe` per transformer block)."""
    key = key.replace("temporal_transformer.", "")
    if key.endswith("attention_blocks.1.pos_encoder.pe"):
        return None
    key = key.replace("attention_blocks.0.pos_encoder.pe", "pos_embed.pe")
    for official, diffusers in _DIFFUSERS_NAMES:
        key = key.replace(official, diffusers)
    return key


def motion_module_state_dict(fmt: str, seed: int = 0, shrink: int = 1, meta: bool = False) -> dict[str, torch.Tensor]:
    """A random motion module laid out as `fmt`'s files are (see motion-module-formats.md), channels divided by
    `shrink`; meta tensors when only the layout matters. A diffusers-layout format holds exactly the weights of
    its official-layout twin, renamed."""
    pe_length = PE_LENGTHS[fmt]
    sd: dict[str, torch.Tensor] = {}
    for prefix, c in motion_module_places(fmt):
        c //= shrink
        if fmt == "hotshot":
            base = prefix.replace("motion_modules.", "temporal_attentions.")
        else:
            base = prefix + "temporal_transformer."
        for name, shape in _module_shapes(c).items():
            sd[base + name] = torch.empty(shape, device="meta") if meta else random_tensor(base + name, shape, seed)
        if pe_length:
            pe = torch.empty(1, pe_length, c, device="meta") if meta else sinusoidal_encoding(pe_length, c)
            for a in (0, 1):
                enc = "positional_encoding" if fmt == "hotshot" else "pe"
                sd[f"{base}transformer_blocks.0.attention_blocks.{a}.pos_encoder.{enc}"] = pe
    if fmt in DIFFUSERS_FORMATS:
        sd = {_diffusers_key(k): v for k, v in sd.items() if _diffusers_key(k) is not None}
    return sd


def motion_lora_state_dict(rank: int = 8, seed: int = 0) -> dict[str, torch.Tensor]:
    """A random v2 motion LoRA: low-rank pairs for every attention projection of the v2 layout."""
    sd: dict[str, torch.Tensor] = {}
    for prefix, c in motion_module_places("v2"):
        for a in (0, 1):
            proc = f"{prefix}temporal_transformer.transformer_blocks.0.attention_blocks.{a}.processor."
            for proj in ("to_q_lora", "to_k_lora", "to_v_lora", "to_out_lora"):
                down, up = f"{proc}{proj}.down.weight", f"{proc}{proj}.up.weight"
                sd[down] = random_tensor(down, (rank, c), seed)
                sd[up] = random_tensor(up, (c, rank), seed) * 0.5
    return sd


def motion_director_lora_state_dict(fmt: str = "v3", rank: int = 8, seed: int = 0,
                                    shrink: int = 1) -> dict[str, torch.Tensor]:
    """A random temporal LoRA as AnimateDiff-MotionDirector saves it (`save_lora_safetensors` with
    `use_motion_lora_format=True`), float32 like its files.

    Its trainer wraps every Linear under each TemporalTransformerBlock: the attention projections and the
    feed-forward's two layers. A wrapped layer `<path>.<name>` is saved as `<path>.processor.<name>_lora.up|down
    .weight` (its `convert_to_motion_lora_key`), so `to_out.0` becomes `to_out.processor.0_lora`, `ff.net.0.proj`
    `ff.net.0.processor.proj_lora` and `ff.net.2` `ff.net.processor.2_lora`. Up matrices start at zero in training;
    here they are random, or the LoRA would change nothing. `shrink` divides the channels, for tests' small modules.
    """
    sd: dict[str, torch.Tensor] = {}
    for prefix, c in motion_module_places(fmt):
        c //= shrink
        block = f"{prefix}temporal_transformer.transformer_blocks.0."
        layers = [(f"{block}attention_blocks.{a}.processor.{proj}_lora", c, c)
                  for a in (0, 1) for proj in ("to_q", "to_k", "to_v")]
        layers += [(f"{block}attention_blocks.{a}.to_out.processor.0_lora", c, c) for a in (0, 1)]
        layers += [(f"{block}ff.net.0.processor.proj_lora", c, 8 * c), (f"{block}ff.net.processor.2_lora", 4 * c, c)]
        for name, fan_in, fan_out in layers:
            down, up = f"{name}.down.weight", f"{name}.up.weight"
            sd[down] = random_tensor(down, (rank, fan_in), seed)
            sd[up] = random_tensor(up, (fan_out, rank), seed) * 0.5
    return sd


def sd15_unet_config() -> dict:
    """ComfyUI's own description of an SD1.5 UNet (as `model_detection` produces for SD15)."""
    return {
        "use_checkpoint": False, "image_size": 32, "out_channels": 4, "use_spatial_transformer": True,
        "legacy": False, "adm_in_channels": None, "in_channels": 4, "model_channels": 320,
        "num_res_blocks": [2, 2, 2, 2], "transformer_depth": [1, 1, 1, 1, 1, 1, 0, 0],
        "channel_mult": [1, 2, 4, 4], "transformer_depth_middle": 1, "use_linear_in_transformer": False,
        "context_dim": 768, "num_heads": 8, "transformer_depth_output": [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
        "use_temporal_attention": False, "use_temporal_resblock": False,
    }


SD_VAE_DDCONFIG = {
    "double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
    "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0,
}


def _meta_shapes() -> dict[str, tuple[tuple[int, ...], torch.Tensor | None]]:
    """Key → shape of the three parts of an SD1.5 checkpoint, built on the meta device from ComfyUI's classes."""
    import comfy.ldm.models.autoencoder
    import comfy.ldm.modules.diffusionmodules.openaimodel as openaimodel
    import comfy.ops
    import comfy.sd1_clip

    parts = {}
    with torch.device("meta"):
        unet = openaimodel.UNetModel(**sd15_unet_config(), device="meta", operations=comfy.ops.disable_weight_init)
        clip = comfy.sd1_clip.SDClipModel(device="meta")
        vae = comfy.ldm.models.autoencoder.AutoencoderKL(ddconfig=SD_VAE_DDCONFIG, embed_dim=4)
    for prefix, module in (("model.diffusion_model.", unet), ("cond_stage_model.", clip), ("first_stage_model.", vae)):
        for key, value in module.state_dict().items():
            parts[prefix + key] = tuple(value.shape)
    return parts


def sd15_checkpoint_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """A random SD1.5 checkpoint in the original key layout, fp16 like the released files."""
    sd = {}
    for key, shape in _meta_shapes().items():
        if key.endswith("position_ids"):
            sd[key] = torch.arange(shape[-1]).reshape(shape)
            continue
        if "logit_scale" in key:
            sd[key] = torch.tensor(4.6052)
            continue
        sd[key] = random_tensor(key, shape, seed).half()
    return sd


def _save(sd: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> None:
    """Write atomically: a half-written fixture must never be mistaken for a finished one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    if path.suffix == ".safetensors":
        import safetensors.torch

        safetensors.torch.save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp), metadata={**(metadata or {}), **STAND_IN_METADATA})
    else:
        torch.save({"state_dict": sd}, tmp)
    os.replace(tmp, path)


def ensure_sd15_checkpoint(checkpoints_dir: Path, seed: int = 0) -> Path:
    path = Path(checkpoints_dir) / SD15_CHECKPOINT
    if not path.exists():
        log.info("generating random SD1.5 checkpoint %s", path)
        _save(sd15_checkpoint_state_dict(seed), path)
    return path


def ensure_motion_module(models_dir: Path, fmt: str, seed: int = 0, dtype: torch.dtype = torch.float16) -> Path:
    path = Path(models_dir) / MOTION_MODULE_FILES[fmt]
    if not path.exists():
        log.info("generating random %s motion module %s", fmt, path)
        sd = {k: v.to(dtype) for k, v in motion_module_state_dict(fmt, seed).items()}
        _save(sd, path)
    return path


def ensure_motion_lora(lora_dir: Path, seed: int = 0) -> Path:
    path = Path(lora_dir) / MOTION_LORA_FILE
    if not path.exists():
        log.info("generating random motion LoRA %s", path)
        _save({k: v.half() for k, v in motion_lora_state_dict(seed=seed).items()}, path)
    return path


def ensure_motion_director_lora(lora_dir: Path, seed: int = 0) -> Path:
    path = Path(lora_dir) / MOTION_DIRECTOR_LORA_FILE
    if not path.exists():
        log.info("generating random MotionDirector v3 LoRA %s", path)
        _save(motion_director_lora_state_dict("v3", seed=seed), path, MOTION_DIRECTOR_METADATA)
    return path


CONTROLNET_FILE = "control_v11p_sd15_canny.safetensors"


def controlnet_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """A random SD1.5 ControlNet in the original `control_model.` layout, shapes from ComfyUI's own cldm class."""
    import comfy.cldm.cldm
    import comfy.ops

    config = {k: v for k, v in sd15_unet_config().items() if k != "out_channels"}
    with torch.device("meta"):
        net = comfy.cldm.cldm.ControlNet(**config, hint_channels=3, device="meta",
                                         operations=comfy.ops.disable_weight_init)
    return {"control_model." + key: random_tensor("control_model." + key, value.shape, seed).half()
            for key, value in net.state_dict().items()}


def ensure_controlnet(controlnet_dir: Path, seed: int = 0) -> Path:
    path = Path(controlnet_dir) / CONTROLNET_FILE
    if not path.exists():
        log.info("generating random SD1.5 ControlNet %s", path)
        _save(controlnet_state_dict(seed), path)
    return path


def main() -> int:
    """Generate fixtures from the command line, in a process of their own (ComfyUI imported with --cpu)."""
    import argparse

    parser = argparse.ArgumentParser(description="Generate random-weight stand-in models.")
    parser.add_argument("models", type=Path, help="a ComfyUI models/ folder")
    parser.add_argument("items", nargs="+", choices=["sd15", "lora", "motion_director_lora", *MOTION_MODULE_FILES])
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="[fixtures] %(message)s")

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from scripts import comfy_host

    sys.path.insert(0, str(comfy_host.comfy_dir()))
    sys.argv = [sys.argv[0], "--cpu"]
    import comfy.options

    comfy.options.enable_args_parsing()
    for item in args.items:
        if item == "sd15":
            print(ensure_sd15_checkpoint(args.models / "checkpoints"))
        elif item == "lora":
            print(ensure_motion_lora(args.models / "animatediff_motion_lora"))
        elif item == "motion_director_lora":
            print(ensure_motion_director_lora(args.models / "animatediff_motion_lora"))
        else:
            print(ensure_motion_module(args.models / "animatediff_models", item))
    return 0


if __name__ == "__main__":
    sys.exit(main())
