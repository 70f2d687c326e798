"""The motion module's transformer as plain tensor maths, for the CUDA fast path (fast_path.py compiles it).

Why a second formulation of `model.TemporalTransformer3D`: the layout changes once on entry and once on exit (the
norms, projections and feed-forward act per token, so they run in the frame-major layout as well), q, k and v come
from one GEMM, and attention over a few frames is a swappable function, so a compiler can fuse everything around it.
Pure maths on tensors and nested tuples: no ComfyUI import, except that `gather_params` reads the weights the way
the plain path does (ComfyUI's cast for offloaded or patched weights).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..host import models as host_models
from .model import TemporalTransformer3D


def short_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """Softmax attention over a few frames as batched matmuls: (sequences, frames, heads·dim) in and out.

    Scores are only frames × frames per head, so the whole thing is a handful of small GEMMs and one fused
    softmax, where long-sequence kernels (flash, memory-efficient) spend most of their time on tiling overhead.
    Softmax runs in float32 like those kernels' accumulators.
    """
    sequences, frames, inner = q.shape
    dim = inner // heads
    q, k, v = (t.view(sequences, frames, heads, dim).transpose(1, 2) for t in (q, k, v))
    scores = (q @ k.transpose(-1, -2)) * dim ** -0.5
    weights = scores.float().softmax(dim=-1).to(v.dtype)
    return (weights @ v).transpose(1, 2).reshape(sequences, frames, inner)


def transformer_math(x: torch.Tensor, frames: int, scale: float | torch.Tensor, heads: int, params: tuple,
                     attention=short_attention) -> torch.Tensor:
    """TemporalTransformer3D's forward (scale and residual included) on plain tensors, in the (b d) f c layout.

    params = (group_norm, proj_in, blocks, proj_out) as built by `gather_params`; `scale` is a number or a tensor
    that broadcasts over (b·f, C, h, w) (Motion Scale Schedule's per-frame, per-region scales); `attention` is
    swappable so the benchmark can measure other kernels.
    """
    (gn_weight, gn_bias, groups, gn_eps), proj_in, blocks, proj_out = params
    bf, c, h, w = x.shape
    videos, tokens = bf // frames, h * w
    y = F.group_norm(x, groups, gn_weight, gn_bias, gn_eps)
    y = y.view(videos, frames, c, tokens).permute(0, 3, 1, 2).reshape(videos * tokens, frames, c)  # -> (b d) f c
    y = F.linear(y, *proj_in)
    for attentions, ((ff_weight, ff_bias, ff_eps), ff_in, ff_out) in blocks:
        for (ln_weight, ln_bias, ln_eps), pe, to_q, to_k, to_v, to_out in attentions:
            n = F.layer_norm(y, (c,), ln_weight, ln_bias, ln_eps) + pe[:frames].to(y.dtype)
            q, k, v = F.linear(n, torch.cat((to_q, to_k, to_v))).split(c, dim=-1)  # one GEMM for the three
            y = F.linear(attention(q, k, v, heads), *to_out) + y
        n = F.layer_norm(y, (c,), ff_weight, ff_bias, ff_eps)
        a, gate = F.linear(n, *ff_in).chunk(2, dim=-1)
        y = F.linear(a * F.gelu(gate), *ff_out) + y
    y = F.linear(y, *proj_out)
    y = y.view(videos, tokens, frames, c).permute(0, 2, 3, 1).reshape(bf, c, h, w)  # -> (b f) c h w
    return y * scale + x


def _weights(layer: torch.nn.Module, x: torch.Tensor) -> tuple:
    """The layer's weight and bias as the plain path would use them: as stored when they already sit on x's device
    in x's dtype with no patches pending, else through ComfyUI's cast (device move, dtype, LoRA/lowvram patches)."""
    weight, bias = layer.weight, layer.bias
    if (layer.weight_function or layer.bias_function or weight.device != x.device or weight.dtype != x.dtype
            or (bias is not None and (bias.device != x.device or bias.dtype != x.dtype))):
        return host_models.cast_bias_weight(layer, x)
    return weight, bias


def gather_params(transformer: TemporalTransformer3D, x: torch.Tensor) -> tuple:
    """The transformer's tensors in the nested-tuple form `transformer_math` reads."""
    def norm(layer):
        return (*_weights(layer, x), layer.eps)

    blocks = []
    for block in transformer.transformer_blocks:
        attentions = tuple(
            (norm(ln), a.pos_encoder.pe[0].to(x.device), _weights(a.to_q, x)[0], _weights(a.to_k, x)[0],
             _weights(a.to_v, x)[0], _weights(a.to_out[0], x))
            for a, ln in zip(block.attention_blocks, block.norms))
        feed_forward = (norm(block.ff_norm), _weights(block.ff.net[0].proj, x), _weights(block.ff.net[2], x))
        blocks.append((attentions, feed_forward))
    gn = transformer.norm
    return ((*_weights(gn, x), gn.num_groups, gn.eps), _weights(transformer.proj_in, x), tuple(blocks),
            _weights(transformer.proj_out, x))
