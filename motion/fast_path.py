"""A CUDA fast path for the motion modules: the maths of `model.TemporalTransformer3D`, compiled per module shape.

Why a second path: on a GPU the eager module spends most of its time outside its FLOPs. Flash-attention kernels
built for long sequences run 16-frame attention slowly, norms, GEGLU and residual adds are separate passes over
the activations, and each attention moves them (b f) d c → (b d) f c and back. Here one module's transformer is
one torch.compile'd function: the layout changes once on entry and once on exit (the norms, projections and
feed-forward act per token, so they run in the frame-major layout as well), q, k and v come from one GEMM,
attention over at most MAX_FRAMES frames is a Triton kernel of ours (triton_attention.py; batched matmuls and a
softmax where Triton is missing), and elementwise work fuses into neighbouring kernels.

The plain path (model.py, ComfyUI's attention) stays the reference and what runs on CPU, under an outer
torch.compile, and after a compile failure; `use_fast_path` decides per call and says once in the log why the
plain path runs.
"""

from __future__ import annotations

import logging

import comfy.ops
import torch
import torch.nn.functional as F

from .model import TemporalTransformer3D, VanillaTemporalModule

log = logging.getLogger(__name__)

MODES = ("auto", "off")
MAX_FRAMES = 32
# Each (batch, channels, h, w, frames) is one static graph of `transformer_math`: SD1.5 at one size has four and
# SDXL three, so a session that changes sizes and models needs more than dynamo's default limit of 8.
RECOMPILE_LIMIT = 64
_FAST_DTYPES = (torch.float16, torch.bfloat16)

_compiled = None
_attention = None
_compile_failure: str | None = None
_said: set[str] = set()


def _say_once(level: int, message: str) -> None:
    if message not in _said:
        _said.add(message)
        log.log(level, message)


def unavailable_reason(x: torch.Tensor, frames: int) -> str | None:
    """Why the fast path cannot run on this input, or None when it can."""
    if _compile_failure is not None:
        return _compile_failure
    if x.device.type != "cuda":
        return f"activations on {x.device.type}, not CUDA"
    if x.dtype not in _FAST_DTYPES:
        return f"{x.dtype} activations (the fast path is for float16/bfloat16)"
    if frames > MAX_FRAMES:
        return f"{frames} frames per video (the short-sequence attention is for ≤ {MAX_FRAMES})"
    if torch.compiler.is_compiling():
        return "the model is already inside torch.compile (e.g. TorchCompileModel)"
    return None


def use_fast_path(mode: str, x: torch.Tensor, frames: int) -> bool:
    """mode "auto": the fast path wherever it can run; "off": always the plain path."""
    if mode == "off":
        return False
    reason = unavailable_reason(x, frames)
    if reason is not None:
        _say_once(logging.INFO, f"AnimateFlow motion modules: plain path with ComfyUI's attention ({reason}).")
        return False
    _say_once(logging.INFO, "AnimateFlow motion modules: CUDA fast path (torch.compile, short-sequence attention).")
    return True


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

    params = (group_norm, proj_in, blocks, proj_out) as built by `gather_params`; `attention` is swappable so
    benchmarks/run.py can measure other kernels in the same compiled region.
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
        return comfy.ops.cast_bias_weight(layer, x)
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


def compiled_math():
    """`transformer_math` under torch.compile: one static graph per input shape, compiled on first use."""
    global _compiled
    if _compiled is None:
        _compiled = torch.compile(transformer_math, dynamic=False)
    return _compiled


def attention_kernel(device: torch.device | str = "cuda"):
    """The Triton short-sequence kernel once it has run and matched `short_attention` on this device; else
    `short_attention` itself (no Triton, or a kernel that fails to build), said once in the log."""
    global _attention
    if _attention is None:
        _attention = short_attention
        try:
            from . import triton_attention

            q, k, v = torch.randn(3, 64, 16, 320, device=device, dtype=torch.float16)
            expected = short_attention(q, k, v, 8)
            error = ((triton_attention.attention(q, k, v, 8) - expected).norm() / expected.norm()).item()
            if error < 1e-2:
                _attention = triton_attention.attention
            else:
                _say_once(logging.WARNING, f"AnimateFlow motion modules: the Triton attention kernel is off on this "
                                           f"device (relative error {error:.1e}); using batched matmuls.")
        except Exception as error:  # no Triton, or a kernel that does not build here
            _say_once(logging.WARNING, f"AnimateFlow motion modules: the Triton attention kernel is unavailable "
                                       f"({type(error).__name__}: {str(error).splitlines()[0][:200]}); using "
                                       "batched matmuls.")
    return _attention


def forward(layer: VanillaTemporalModule, x: torch.Tensor, frames: int, scale: float | torch.Tensor = 1.0) -> torch.Tensor:
    """The fast path's stand-in for `layer(x, frames, scale)`; a compile failure switches to the plain path for good.
    A tensor `scale` (a per-frame/per-pixel motion scale, broadcast over (b·f, C, h, w)) is one more graph input."""
    global _compile_failure
    if not isinstance(scale, torch.Tensor) and scale == 0.0:
        return x
    if not isinstance(scale, torch.Tensor):
        scale = float(scale)
    comfy.ops.run_every_op()
    transformer = layer.temporal_transformer
    heads = transformer.transformer_blocks[0].attention_blocks[0].heads
    params = gather_params(transformer, x)
    try:
        with torch._dynamo.config.patch(recompile_limit=RECOMPILE_LIMIT):
            return compiled_math()(x, frames, scale, heads, params, attention_kernel(x.device))
    except torch.cuda.OutOfMemoryError:
        raise
    except Exception as error:  # no Triton, no C compiler, an inductor bug: eager is slower but right
        _compile_failure = f"torch.compile failed: {type(error).__name__}: {str(error).splitlines()[0][:300]}"
        log.warning("AnimateFlow motion modules: %s; using the plain path with ComfyUI's attention from now on.",
                    _compile_failure)
        return layer(x, frames, scale)
