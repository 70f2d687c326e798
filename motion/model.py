"""The AnimateDiff motion module, following the original research code's `motion_module.py`.

Module → transformer → block → attention, each a small class whose forward reads top to bottom.
Parameter and buffer names are the official checkpoint keys (see docs/motion-module-formats.md), so a
state dict loads as-is and motion LoRA patches address the same keys. Layers come from `comfy.ops`
(`manual_cast`) so weights are cast to the activation dtype the way ComfyUI casts its own UNet, and
temporal attention goes through ComfyUI's `optimized_attention`, the backend the user chose at start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..host import models

HEADS = 8
GROUPS = 32
OPS = models.OPS


@dataclass(frozen=True)
class MotionLayout:
    """The architecture a checkpoint describes: channels per UNet level, the optional mid module, encoding length."""

    down_channels: tuple[int, ...]
    has_mid: bool
    pe_length: int

    @property
    def up_channels(self) -> tuple[int, ...]:
        return tuple(reversed(self.down_channels))


def sinusoidal_encoding(length: int, channels: int) -> torch.Tensor:
    """AnimateDiff's positional encoding [1, length, channels]: sin on even channels, cos on odd ones.

    Computed in float64 so a recomputed encoding matches the stored buffers of released files.
    """
    position = torch.arange(length, dtype=torch.float64).unsqueeze(1)
    div = torch.exp(torch.arange(0, channels, 2, dtype=torch.float64) * (-math.log(10000.0) / channels))
    pe = torch.zeros(1, length, channels, dtype=torch.float64)
    pe[0, :, 0::2] = torch.sin(position * div)
    pe[0, :, 1::2] = torch.cos(position * div)
    return pe.float()


# Sequences per attention call from which calls are split. ComfyUI splits PyTorch attention above 2**15 sequences on
# NVIDIA (kernels misbehave on huge batches); a temporal layer has one sequence per pixel per video, and context
# windows batched into one call reach exactly 2**15 at 512² (4 windows, cond + uncond), where an H100 run gave frames
# far off the unbatched ones. Below this no call is split, so nothing a single window reaches changes.
SPLIT_FROM = 2**15
SPLIT_SIZE = 2**14


def temporal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """Attention over frames, (sequences, frames, heads·dim) in and out, through ComfyUI's selected backend.

    Each sequence attends only within itself, so splitting the batch changes no result.
    """
    attention = models.attention
    if q.shape[0] < SPLIT_FROM:
        return attention(q, k, v, heads)
    return torch.cat([attention(q[i:i + SPLIT_SIZE], k[i:i + SPLIT_SIZE], v[i:i + SPLIT_SIZE], heads)
                      for i in range(0, q.shape[0], SPLIT_SIZE)])


class PositionalEncoding(nn.Module):
    def __init__(self, channels: int, length: int, device=None):
        super().__init__()
        self.register_buffer("pe", sinusoidal_encoding(length, channels).to(device), persistent=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pe[:, : x.shape[1]].to(x.dtype)


class TemporalSelfAttention(nn.Module):
    """The original `VersatileAttention` in its "Temporal" mode: self-attention across the frames of one position."""

    def __init__(self, channels: int, pe_length: int, dtype=None, device=None, operations=OPS):
        super().__init__()
        self.heads = HEADS
        self.to_q = operations.Linear(channels, channels, bias=False, dtype=dtype, device=device)
        self.to_k = operations.Linear(channels, channels, bias=False, dtype=dtype, device=device)
        self.to_v = operations.Linear(channels, channels, bias=False, dtype=dtype, device=device)
        self.to_out = nn.ModuleList([operations.Linear(channels, channels, dtype=dtype, device=device), nn.Identity()])
        self.pos_encoder = PositionalEncoding(channels, pe_length, device=device)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        bf, tokens, c = x.shape
        x = x.view(bf // frames, frames, tokens, c).permute(0, 2, 1, 3).reshape(-1, frames, c)  # (b f) d c -> (b d) f c
        x = self.pos_encoder(x)
        x = temporal_attention(self.to_q(x), self.to_k(x), self.to_v(x), self.heads)
        x = self.to_out[0](x)
        return x.view(bf // frames, tokens, frames, c).permute(0, 2, 1, 3).reshape(bf, tokens, c)  # (b d) f c -> (b f) d c


class GEGLU(nn.Module):
    def __init__(self, dim_in: int, dim_out: int, dtype=None, device=None, operations=OPS):
        super().__init__()
        self.proj = operations.Linear(dim_in, dim_out * 2, dtype=dtype, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, gate = self.proj(x).chunk(2, dim=-1)
        return x * F.gelu(gate)


class FeedForward(nn.Module):
    """GEGLU feed-forward; index 1 is the (inference-time identity) dropout, kept so keys read `ff.net.2`."""

    def __init__(self, channels: int, dtype=None, device=None, operations=OPS):
        super().__init__()
        self.net = nn.ModuleList([
            GEGLU(channels, 4 * channels, dtype=dtype, device=device, operations=operations),
            nn.Identity(),
            operations.Linear(4 * channels, channels, dtype=dtype, device=device),
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.net:
            x = layer(x)
        return x


class TemporalTransformerBlock(nn.Module):
    def __init__(self, channels: int, pe_length: int, dtype=None, device=None, operations=OPS):
        super().__init__()
        self.attention_blocks = nn.ModuleList([
            TemporalSelfAttention(channels, pe_length, dtype=dtype, device=device, operations=operations) for _ in range(2)
        ])
        self.norms = nn.ModuleList([operations.LayerNorm(channels, dtype=dtype, device=device) for _ in range(2)])
        self.ff = FeedForward(channels, dtype=dtype, device=device, operations=operations)
        self.ff_norm = operations.LayerNorm(channels, dtype=dtype, device=device)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:
        for attention, norm in zip(self.attention_blocks, self.norms):
            x = attention(norm(x), frames) + x
        return self.ff(self.ff_norm(x)) + x


class TemporalTransformer3D(nn.Module):
    def __init__(self, channels: int, pe_length: int, dtype=None, device=None, operations=OPS):
        super().__init__()
        self.norm = operations.GroupNorm(GROUPS, channels, eps=1e-6, affine=True, dtype=dtype, device=device)
        self.proj_in = operations.Linear(channels, channels, dtype=dtype, device=device)
        self.transformer_blocks = nn.ModuleList([
            TemporalTransformerBlock(channels, pe_length, dtype=dtype, device=device, operations=operations)
        ])
        self.proj_out = operations.Linear(channels, channels, dtype=dtype, device=device)

    def forward(self, x: torch.Tensor, frames: int, scale: float | torch.Tensor = 1.0) -> torch.Tensor:
        """x: (b·f, C, h, w). The norm is per frame, as the original code and its training did. `scale` is a float
        or a tensor broadcast over (b·f, C, h, w), e.g. (b·f, 1, h, w) for a per-frame, per-pixel schedule."""
        bf, c, h, w = x.shape
        residual = x
        y = self.norm(x).permute(0, 2, 3, 1).reshape(bf, h * w, c)
        y = self.proj_in(y)
        for block in self.transformer_blocks:
            y = block(y, frames)
        y = self.proj_out(y).reshape(bf, h, w, c).permute(0, 3, 1, 2).contiguous()
        if isinstance(scale, torch.Tensor) or scale != 1.0:
            y = y * scale
        return y + residual


class VanillaTemporalModule(nn.Module):
    """One motion module: the layer inserted into a UNet block. `scale` multiplies its residual contribution."""

    def __init__(self, channels: int, pe_length: int, dtype=None, device=None, operations=OPS):
        super().__init__()
        self.channels = channels
        self.temporal_transformer = TemporalTransformer3D(channels, pe_length, dtype=dtype, device=device,
                                                          operations=operations)

    @property
    def pe_length(self) -> int:
        return self.temporal_transformer.transformer_blocks[0].attention_blocks[0].pos_encoder.pe.shape[1]

    def forward(self, x: torch.Tensor, frames: int, scale: float | torch.Tensor = 1.0) -> torch.Tensor:
        if not isinstance(scale, torch.Tensor) and scale == 0.0:
            return x
        return self.temporal_transformer(x, frames, scale)


class MotionBlock(nn.Module):
    def __init__(self, channels: int, count: int, pe_length: int, dtype=None, device=None, operations=OPS):
        super().__init__()
        self.motion_modules = nn.ModuleList([
            VanillaTemporalModule(channels, pe_length, dtype=dtype, device=device, operations=operations)
            for _ in range(count)
        ])


class MotionModel(nn.Module):
    """All motion modules of a checkpoint, laid out like its keys: down_blocks / mid_block / up_blocks."""

    def __init__(self, layout: MotionLayout, dtype=None, device=None, operations=OPS):
        super().__init__()
        self.layout = layout
        self.dtype = dtype
        self.down_blocks = nn.ModuleList([
            MotionBlock(c, 2, layout.pe_length, dtype, device, operations) for c in layout.down_channels
        ])
        self.mid_block = (MotionBlock(layout.down_channels[-1], 1, layout.pe_length, dtype, device, operations)
                          if layout.has_mid else None)
        self.up_blocks = nn.ModuleList([
            MotionBlock(c, 3, layout.pe_length, dtype, device, operations) for c in layout.up_channels
        ])

    def get_dtype(self):
        return self.dtype
