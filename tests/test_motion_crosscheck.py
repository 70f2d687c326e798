"""Our motion module inside ComfyUI's UNet against diffusers' MotionAdapter + UNetMotionModel (independent code).

Both sides get the same random weights: a small SD1.5-shaped UNet (4 levels, 2 layers each, attention on the
first three; channels 32/64/128/128, 8×8 latents, so it stays cheap) built by diffusers, converted to ComfyUI's layout
with ComfyUI's own key map, and a MotionAdapter whose weights are written out in the ORIGINAL AnimateDiff key
layout and loaded through our Load Motion Module node. The whole UNet's noise prediction for a 16-frame video
must agree to a relative error below 1e-4 in float32.
"""

from __future__ import annotations

import math

import comfy.utils
import pytest
import safetensors.torch
import torch
from conftest import MODELS, call_node
from motion_helpers import SMALL_CHANNELS as CHANNELS
from motion_helpers import SMALL_CONTEXT_DIM as CONTEXT_DIM
from motion_helpers import run_unet, small_sd15_model, small_unet_config

diffusers = pytest.importorskip("diffusers")

FRAMES = 16


def _diffusers_unet() -> "diffusers.UNet2DConditionModel":
    torch.manual_seed(0)
    return diffusers.UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=CHANNELS, layers_per_block=2,
        cross_attention_dim=CONTEXT_DIM, attention_head_dim=8, norm_num_groups=32,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    ).eval()


def _comfy_model(diffusers_unet):
    """A ComfyUI SD1.5 model of the same small shape, holding the diffusers UNet's weights (ComfyUI's key map)."""
    key_map = comfy.utils.unet_to_diffusers(small_unet_config())
    dsd = diffusers_unet.state_dict()
    return small_sd15_model({ck: dsd[dk] for dk, ck in key_map.items() if dk in dsd})


def _randomise(module: torch.nn.Module, seed: int) -> None:
    """Non-trivial weights everywhere, norms included, so every mapped key matters."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.ndim == 1:
                base = 1.0 if name.endswith("weight") else 0.0
                p.copy_(base + 0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p[0].numel()))


def original_layout(adapter_sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """diffusers MotionAdapter keys → the original AnimateDiff checkpoint keys (motion-module-formats.md)."""
    renames = {"transformer_blocks.0.norm1.": "transformer_blocks.0.norms.0.",
               "transformer_blocks.0.norm2.": "transformer_blocks.0.norms.1.",
               "transformer_blocks.0.norm3.": "transformer_blocks.0.ff_norm.",
               "transformer_blocks.0.attn1.": "transformer_blocks.0.attention_blocks.0.",
               "transformer_blocks.0.attn2.": "transformer_blocks.0.attention_blocks.1."}
    out = {}
    for key, value in adapter_sd.items():
        head, rest = key.split(".motion_modules.")
        index, rest = rest.split(".", 1)
        base = f"{head}.motion_modules.{index}.temporal_transformer."
        if rest == "transformer_blocks.0.pos_embed.pe":
            for a in (0, 1):
                out[f"{base}transformer_blocks.0.attention_blocks.{a}.pos_encoder.pe"] = value
            continue
        for old, new in renames.items():
            rest = rest.replace(old, new)
        out[base + rest] = value
    return out


class PerFrameGroupNorm(torch.nn.Module):
    """diffusers 0.42 normalises the motion module's input over all frames of a video ((b, c, f, h, w) into
    GroupNorm); the original AnimateDiff code rearranges to (b·f, c, h, w) first, so each frame is normalised
    on its own, and the released modules were trained that way. We implement the original; this wrapper gives
    diffusers the same per-frame statistics so the comparison checks everything else."""

    def __init__(self, norm: torch.nn.GroupNorm):
        super().__init__()
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, f, h, w = x.shape
        y = self.norm(x.transpose(1, 2).reshape(b * f, c, h, w))
        return y.reshape(b, f, c, h, w).transpose(1, 2)


@pytest.mark.parametrize("version,mid", [("v2", True), ("v3", False)])
def test_whole_unet_matches_diffusers(version, mid):
    unet = _diffusers_unet()
    adapter = diffusers.MotionAdapter(block_out_channels=CHANNELS, motion_max_seq_length=32,
                                      use_motion_mid_block=mid).eval()
    _randomise(adapter, seed=1)
    file_name = f"xcheck_{version}_test.safetensors"
    path = MODELS / "animatediff_models" / file_name
    safetensors.torch.save_file({k: v.clone() for k, v in original_layout(adapter.state_dict()).items()}, path)
    try:
        motion, description = call_node("AnimateFlow_LoadMotionModule", model_name=file_name)
    finally:
        path.unlink()
    assert description.startswith(version)
    assert motion.model.down_blocks[0].motion_modules[0].temporal_transformer.proj_in.weight.dtype == torch.float32

    base = _comfy_model(unet)
    (applied,) = call_node("AnimateFlow_ApplyMotionModule", model=base, motion_module=motion, motion_scale=1.0,
                           beta_schedule="sd")

    reference = diffusers.UNetMotionModel.from_unet2d(unet, adapter).eval()
    for module in reference.modules():
        if isinstance(module, diffusers.models.unets.unet_motion_model.AnimateDiffTransformer3D):
            module.norm = PerFrameGroupNorm(module.norm)

    gen = torch.Generator().manual_seed(2)
    x = torch.randn(1, 4, FRAMES, 8, 8, generator=gen)
    context = torch.randn(1, 77, CONTEXT_DIM, generator=gen)
    t = torch.tensor([500.0])
    with torch.no_grad():
        expected = reference(x, t, context.repeat_interleave(FRAMES, 0)).sample  # (b, c, f, h, w)
    expected = expected[0].transpose(0, 1)  # (f, c, h, w)

    frames_first = x[0].transpose(0, 1).contiguous()
    ours = run_unet(applied, frames_first, context.repeat(FRAMES, 1, 1), [0], t=500.0)
    rel = ((ours - expected).norm() / expected.norm()).item()
    assert rel < 1e-4, rel

    plain = run_unet(base, frames_first, context.repeat(FRAMES, 1, 1), [0], t=500.0)
    assert ((plain - expected).norm() / expected.norm()).item() > 1e-2, "the motion module changed nothing"
