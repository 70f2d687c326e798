"""Short-sequence attention as one Triton kernel, for the CUDA fast path only (fast_kernels.py picks it).

Why: temporal attention runs over ≤ 32 frames but across tens of thousands of sequences (every pixel of every
video) and 8 heads. Batched matmuls need the heads moved next to the batch (a copy of q, k, v and the output) and
write the scores out between the two products; long-sequence kernels tile for thousands of keys. Here one program
takes one sequence: it reads each head's frames × dim slice of q, k and v straight from the projections' layout
(strided, so q, k and v may be views of one fused projection), keeps the frames × frames scores in registers with
a float32 softmax, and writes the output in the layout the output projection reads. Each byte is read or written
once.

Registered as the custom op `animateflow::short_attention` so torch.compile treats it as one opaque call.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _short_attention_kernel(q_ptr, k_ptr, v_ptr, o_ptr, q_rows, q_frames, k_rows, k_frames, v_rows, v_frames,
                            o_rows, o_frames, frames, dim, scale,
                            HEADS: tl.constexpr, BLOCK_F: tl.constexpr, BLOCK_D: tl.constexpr):
    sequence = tl.program_id(0).to(tl.int64)
    f = tl.arange(0, BLOCK_F)
    d = tl.arange(0, BLOCK_D)
    mask = (f[:, None] < frames) & (d[None, :] < dim)
    for head in tl.static_range(HEADS):
        column = head * dim + d[None, :]
        q = tl.load(q_ptr + sequence * q_rows + f[:, None] * q_frames + column, mask=mask, other=0.0)
        k = tl.load(k_ptr + sequence * k_rows + f[:, None] * k_frames + column, mask=mask, other=0.0)
        v = tl.load(v_ptr + sequence * v_rows + f[:, None] * v_frames + column, mask=mask, other=0.0)
        scores = tl.dot(q, tl.trans(k)) * scale
        scores = tl.where(f[None, :] < frames, scores, float("-inf"))
        weights = tl.exp(scores - tl.max(scores, axis=1)[:, None])
        weights = weights / tl.sum(weights, axis=1)[:, None]
        out = tl.dot(weights.to(v.dtype), v)
        tl.store(o_ptr + sequence * o_rows + f[:, None] * o_frames + column, out.to(o_ptr.dtype.element_ty),
                 mask=mask)


@torch.library.custom_op("animateflow::short_attention", mutates_args=())
def short_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """(sequences, frames, heads·dim) in and out, like fast_math.short_attention; the last dimension must be dense."""
    sequences, frames, inner = q.shape
    dim = inner // heads
    out = torch.empty(sequences, frames, inner, device=q.device, dtype=q.dtype)
    if sequences == 0:
        return out
    q, k, v = (t if t.stride(-1) == 1 else t.contiguous() for t in (q, k, v))
    _short_attention_kernel[(sequences,)](
        q, k, v, out, q.stride(0), q.stride(1), k.stride(0), k.stride(1), v.stride(0), v.stride(1),
        out.stride(0), out.stride(1), frames, dim, dim ** -0.5,
        HEADS=heads, BLOCK_F=max(16, triton.next_power_of_2(frames)), BLOCK_D=max(16, triton.next_power_of_2(dim)),
        num_warps=4 if dim > 64 else 2)
    return out


@short_attention.register_fake
def _(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    return torch.empty(q.shape, device=q.device, dtype=q.dtype)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """The custom op as a plain function, so torch.compile traces a call to it like any other."""
    return torch.ops.animateflow.short_attention(q, k, v, heads)
