"""Small motion-module state dicts with the official keys, for tests that must not pay for full-size weights."""

from __future__ import annotations

import torch

from scripts import fixtures


def layout_state_dict(fmt: str, shrink: int = 1, meta: bool = False, seed: int = 0) -> dict[str, torch.Tensor]:
    """A motion module of `fmt` laid out as scripts/fixtures.py writes it, channels divided by `shrink`.

    Meta tensors when only shapes matter (format detection), random ones initialised like the fixtures otherwise.
    """
    return fixtures.motion_module_state_dict(fmt, seed=seed, shrink=shrink, meta=meta)


def small_lora_state_dict(shrink: int, rank: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    """A v2 motion LoRA (attention-processor keys) for a module whose channels were divided by `shrink`."""
    sd = {}
    for prefix, c in fixtures.motion_module_places("v2"):
        c //= shrink
        for a in (0, 1):
            proc = f"{prefix}temporal_transformer.transformer_blocks.0.attention_blocks.{a}.processor."
            for proj in ("to_q_lora", "to_k_lora", "to_v_lora", "to_out_lora"):
                down, up = f"{proc}{proj}.down.weight", f"{proc}{proj}.up.weight"
                sd[down] = fixtures.random_tensor(down, (rank, c), seed)
                sd[up] = fixtures.random_tensor(up, (c, rank), seed)
    return sd


SHRINK = 10  # the small models' channels: the full-size ones' divided by this
SMALL_CHANNELS = (32, 64, 128, 128)
SMALL_CONTEXT_DIM = 32


def small_unet_config() -> dict:
    """ComfyUI's SD1.5 UNet shape (4 levels, 2 layers, attention on three) with channels divided by 10."""
    config = fixtures.sd15_unet_config()
    config.update(model_channels=SMALL_CHANNELS[0], context_dim=SMALL_CONTEXT_DIM)
    return config


def small_sd15_model(unet_state_dict: dict[str, torch.Tensor] | None = None, seed: int = 0):
    """A ComfyUI SD1.5 ModelPatcher of the small shape: random weights like the fixtures, or the given ones."""
    import comfy.model_patcher
    import comfy.supported_models

    config = comfy.supported_models.SD15(small_unet_config())
    config.set_inference_dtype(torch.float32, None)
    model = config.get_model({})
    unet = model.diffusion_model
    if unet_state_dict is None:
        unet_state_dict = {k: fixtures.random_tensor(k, v.shape, seed) for k, v in unet.state_dict().items()}
    unet.load_state_dict(unet_state_dict, strict=True)
    cpu = torch.device("cpu")
    return comfy.model_patcher.ModelPatcher(model, load_device=cpu, offload_device=cpu)


def small_motion(fmt: str = "v2", sd: dict[str, torch.Tensor] | None = None, dtype: torch.dtype = torch.float32,
                 name: str | None = None, metadata: dict | None = None):
    """A MotionModule of `fmt` for the small UNet (channels divided by SHRINK): random like the fixtures, or `sd`."""
    from conftest import pack_module

    loader = pack_module("motion.loader")
    return loader.build_motion_module(sd if sd is not None else layout_state_dict(fmt, shrink=SHRINK),
                                      name or f"small_{fmt}", dtype=dtype, metadata=metadata)


def run_unet(patcher, x: torch.Tensor, context: torch.Tensor, cond_or_uncond: list[int], t: float = 500.0):
    """One UNet evaluation of a (possibly motion-patched) model, with the transformer_options the sampler gives."""
    import comfy.model_management

    comfy.model_management.load_models_gpu([patcher] + patcher.get_nested_additional_models())
    options = {"cond_or_uncond": list(cond_or_uncond),
               "patches": patcher.model_options["transformer_options"].get("patches", {}),
               "wrappers": patcher.wrappers}
    try:
        with torch.no_grad():
            return patcher.model.diffusion_model(x, torch.full((x.shape[0],), t), context, transformer_options=options)
    finally:
        comfy.model_management.unload_all_models()
