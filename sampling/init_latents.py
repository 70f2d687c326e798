"""Init latents for img2vid: the original extension's blend of an init latent with fresh noise per frame.

Frame i keeps `init_alpha(i) = 1 - i**latent_power / latent_scale` (clamped to [0, 1]) of the init latent and
takes the rest from seeded noise, so the first frame stays close to the image and later frames are freer to move.
With a last-frame latent the same curve runs backwards from the last frame, where both weights sum above 1
they are scaled down to sum to 1, and the endpoints are pinned: frame 0 is exactly the init latent and the last
frame exactly the last latent, as sd-webui-animatediff v1.x does (scripts/animatediff_latent.py).
"""

from __future__ import annotations

import torch

from .errors import SamplingError


def frame_alphas(frames: int, latent_power: float, latent_scale: float) -> torch.Tensor:
    """Per-frame weight of the init latent, float32 [frames], clamped to [0, 1].

    The original only clamps below 0; clamping above 1 too keeps a negative scale from amplifying the latent.
    """
    if latent_scale == 0:
        raise SamplingError("latent_scale is 0, which divides by zero", "set it above 0 (the original uses 32).",
                            input="latent_scale")
    index = torch.arange(frames, dtype=torch.float64)
    alphas = 1.0 - index.pow(latent_power) / latent_scale
    return alphas.clamp(0.0, 1.0).to(torch.float32)


def blend_weights(
    frames: int,
    latent_power: float,
    latent_scale: float,
    last: tuple[float, float] | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Weights (init, last) per frame; `last` is (latent_power_last, latent_scale_last) or None.

    The last-frame curve is the init curve reversed over the same frame count. Where init + last exceed 1 both
    are divided by their sum, so the noise weight `1 - init - last` never goes negative. Then, as the original
    does after that normalisation, the endpoints are pinned (init 1/0 at frame 0, 0/1 at the last frame): without
    it frame 0 of a short video would be part last image (65% / 35% at the defaults over 16 frames). The original
    pins the last frame after the first, so a 1-frame video with a last latent is the last latent.
    """
    init = frame_alphas(frames, latent_power, latent_scale)
    if last is None:
        return init, None
    last_alpha = frame_alphas(frames, *last).flip(0)
    total = init + last_alpha
    over = total > 1
    init = torch.where(over, init / total, init)
    last_alpha = torch.where(over, last_alpha / total, last_alpha)
    init[0], last_alpha[0] = 1.0, 0.0
    init[-1], last_alpha[-1] = 0.0, 1.0
    return init, last_alpha


def _per_frame(latent: torch.Tensor, frames: int, name: str) -> torch.Tensor:
    """A batch of one is shared by every frame; a batch of `frames` gives each frame its own latent."""
    if latent.shape[0] == 1:
        return latent.expand(frames, *latent.shape[1:])
    if latent.shape[0] == frames:
        return latent
    raise SamplingError(f"{name} has a batch of {latent.shape[0]} latents but {frames} frames were asked",
                        f"give one latent, exactly {frames}, or set frames to 0 to use the batch size.", input=name)


def blend_init_latents(
    init_latent: torch.Tensor,
    frames: int,
    latent_power: float,
    latent_scale: float,
    seed: int,
    last_latent: torch.Tensor | None = None,
    latent_power_last: float = 1.0,
    latent_scale_last: float = 32.0,
    noise_std: float = 1.0,
) -> torch.Tensor:
    """The [frames, ...] latent batch to sample from; frames 0 means the batch size of `init_latent`.

    Noise comes from a CPU torch.Generator seeded with `seed`, drawn for the whole output shape at once as
    ComfyUI's own `prepare_noise` does, so a seed gives the same result on every device. `noise_std` scales
    that noise into the latent's space: ComfyUI keeps latents unscaled, the original blended in the model's
    scaled space, so the node passes 1 / the model's latent scale factor.
    """
    if frames < 0:
        raise SamplingError(f"frames is {frames}", "use a positive count, or 0 for the batch size of init_latent.",
                            input="frames")
    frames = frames or init_latent.shape[0]
    if last_latent is not None and last_latent.shape[1:] != init_latent.shape[1:]:
        raise SamplingError(f"last_latent has shape {tuple(last_latent.shape[1:])} per frame but init_latent has "
                            f"{tuple(init_latent.shape[1:])}", "encode both images at the same size.",
                            input="last_latent")
    last = None if last_latent is None else (latent_power_last, latent_scale_last)
    init_w, last_w = blend_weights(frames, latent_power, latent_scale, last)

    shape = (frames, *init_latent.shape[1:])
    generator = torch.Generator(device="cpu").manual_seed(seed)
    noise = torch.randn(shape, generator=generator, dtype=torch.float32, device="cpu") * noise_std
    noise = noise.to(init_latent.device)

    view = (frames,) + (1,) * (init_latent.dim() - 1)
    init_w = init_w.to(init_latent.device).view(view)
    init = _per_frame(init_latent, frames, "init_latent").float()
    if last_w is None:
        out = init * init_w + noise * (1 - init_w)
    else:
        last_w = last_w.to(init_latent.device).view(view)
        last_frames = _per_frame(last_latent.to(init_latent.device), frames, "last_latent").float()
        out = init * init_w + last_frames * last_w + noise * (1 - init_w - last_w)
    return out.to(init_latent.dtype)
