"""Files of motion-module-adjacent families AnimateFlow does not load as motion modules, laid out with their real
key names, so Load Motion Module's errors can be tested on what users actually pick by mistake.

Key layouts as the released files and the loaders that read them name them: CameraCtrl's pruned model (pose encoder
`encoder_*` plus `processor.qkv_merge` layers in the motion module's attention), PIA (`conv_in` taking 9 channels
plus motion modules), SparseCtrl (a diffusers-style ControlNet: `controlnet_cond_embedding`, `controlnet_down_blocks`,
`controlnet_mid_block`, with motion modules), AnimateLCM-I2V (`img_encoder.*` plus AnimateLCM's motion modules),
AnimateDiff v3's adapter (diffusers attention-processor LoRA on the SD UNet's spatial attentions), a kohya-style
image LoRA, a motion LoRA, and a full SD checkpoint. Channels can be divided by `shrink` (key names unchanged) so
files stay small; detection looks at keys only.
"""

from __future__ import annotations

import torch

from scripts import fixtures

FAMILIES = ("cameractrl", "pia", "sparsectrl", "animatelcm_i2v", "v3_adapter", "image_lora", "motion_lora",
            "checkpoint")
FILES = {
    "cameractrl": "CameraCtrl_pruned.safetensors",
    "pia": "pia.safetensors",
    "sparsectrl": "v3_sd15_sparsectrl_rgb.safetensors",
    "animatelcm_i2v": "AnimateLCM_sd15_i2v.safetensors",
    "v3_adapter": "v3_sd15_adapter.safetensors",
    "image_lora": "AnimateLCM_sd15_t2v_lora.safetensors",
    "motion_lora": "v2_lora_PanLeft_as_module.safetensors",
    "checkpoint": "some_sd15_checkpoint.safetensors",
}


def _tensor(shape, meta: bool) -> torch.Tensor:
    return torch.empty(shape, device="meta") if meta else torch.zeros(shape, dtype=torch.float16)


def family_state_dict(family: str, shrink: int = 1, meta: bool = False) -> dict[str, torch.Tensor]:
    channels = [c // shrink for c in fixtures.SD15_DOWN_CHANNELS]
    sd: dict[str, torch.Tensor] = {}

    def motion(fmt: str) -> None:
        sd.update({k: (v if meta else v.half()) for k, v in
                   fixtures.motion_module_state_dict(fmt, shrink=shrink, meta=meta).items()})

    if family == "cameractrl":
        sd["encoder_conv_in.weight"] = _tensor((channels[0], 384, 3, 3), meta)
        sd["encoder_conv_in.bias"] = _tensor((channels[0],), meta)
        for i, c in enumerate(channels):
            for j in range(2):
                sd[f"encoder_down_conv_blocks.{i}.{j}.block1.weight"] = _tensor((c, c, 1, 1), meta)
                sd[f"encoder_down_attention_blocks.{i}.{j}.attention_blocks.0.to_q.weight"] = _tensor((c, c), meta)
        for prefix, c in fixtures.motion_module_places("v3"):
            for a in (0, 1):
                base = f"{prefix}temporal_transformer.transformer_blocks.0.attention_blocks.{a}.processor.qkv_merge."
                sd[base + "weight"] = _tensor((c // shrink, c // shrink), meta)
                sd[base + "bias"] = _tensor((c // shrink,), meta)
    elif family == "pia":
        motion("v3")
        sd["conv_in.weight"] = _tensor((channels[0], 9, 3, 3), meta)
        sd["conv_in.bias"] = _tensor((channels[0],), meta)
    elif family == "sparsectrl":
        motion("v3")
        sd["conv_in.weight"] = _tensor((channels[0], 4, 3, 3), meta)
        sd["controlnet_cond_embedding.conv_in.weight"] = _tensor((16, 3, 3, 3), meta)
        sd["controlnet_cond_embedding.conv_out.weight"] = _tensor((channels[0], 256, 3, 3), meta)
        sd["time_embedding.linear_1.weight"] = _tensor((4 * channels[0], channels[0]), meta)
        sd["down_blocks.0.resnets.0.conv1.weight"] = _tensor((channels[0], channels[0], 3, 3), meta)
        for i in range(12):
            sd[f"controlnet_down_blocks.{i}.weight"] = _tensor((channels[0], channels[0], 1, 1), meta)
        sd["controlnet_mid_block.weight"] = _tensor((channels[-1], channels[-1], 1, 1), meta)
    elif family == "animatelcm_i2v":
        motion("animatelcm")
        sd["img_encoder.conv_in.weight"] = _tensor((channels[0], 4, 3, 3), meta)
        sd["img_encoder.body.0.block1.weight"] = _tensor((channels[0], channels[0], 3, 3), meta)
    elif family == "v3_adapter":
        for block, c in (("down_blocks.0", channels[0]), ("mid_block", channels[-1]), ("up_blocks.3", channels[0])):
            for attn in ("attn1", "attn2"):
                for proj in ("to_q", "to_k", "to_v", "to_out"):
                    base = f"{block}.attentions.0.transformer_blocks.0.{attn}.processor.{proj}_lora."
                    sd[base + "down.weight"] = _tensor((32, c), meta)
                    sd[base + "up.weight"] = _tensor((c, 32), meta)
    elif family == "image_lora":
        for name, c in (("down_blocks_0_attentions_0_proj_in", channels[0]),
                        ("up_blocks_3_attentions_2_transformer_blocks_0_attn1_to_q", channels[0])):
            sd[f"lora_unet_{name}.lora_down.weight"] = _tensor((64, c), meta)
            sd[f"lora_unet_{name}.lora_up.weight"] = _tensor((c, 64), meta)
            sd[f"lora_unet_{name}.alpha"] = _tensor((), meta)
        sd["lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight"] = _tensor((64, 768), meta)
    elif family == "motion_lora":
        for prefix, c in fixtures.motion_module_places("v2"):
            proc = f"{prefix}temporal_transformer.transformer_blocks.0.attention_blocks.0.processor."
            sd[proc + "to_q_lora.down.weight"] = _tensor((4, c // shrink), meta)
            sd[proc + "to_q_lora.up.weight"] = _tensor((c // shrink, 4), meta)
    elif family == "checkpoint":
        sd["model.diffusion_model.input_blocks.0.0.weight"] = _tensor((channels[0], 4, 3, 3), meta)
        sd["first_stage_model.decoder.conv_in.weight"] = _tensor((512, 4, 3, 3), meta)
        sd["cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"] = _tensor((16, 768), meta)
    else:
        raise ValueError(f"unknown family {family!r}; one of {', '.join(FAMILIES)}")
    return sd
