"""Videos as latents without ever holding their IMAGE batch: VAE-encode while reading a file, VAE-decode while
writing one.

A 512² IMAGE batch of 1,000 frames is 3 GB of float32; its SD latent is 65 MB. Load Video with a VAE reads the
file in chunks and encodes each chunk into a latent tensor allocated once; Video Combine given latents decodes
one chunk at a time as its writers pull frames. Either way memory holds the latent plus one chunk of frames.

The VAE is ComfyUI's own object: its `encode` / `decode` are called on each chunk exactly as VAE Encode / VAE
Decode call them on a whole batch, so its device placement, dtype, batch splitting by free memory and its
fallback to tiled decoding on out-of-memory all apply inside a chunk. Chunks are sized from the VAE's own memory
estimate when it runs on the CPU, where its activations share RAM with everything else.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable

import torch

from . import frames
from .video_reader import VideoStream

log = logging.getLogger(__name__)

CPU_CHUNK_BYTES = 1 << 30
"""On a CPU (or unified-memory) VAE, one call's activations, by the VAE's own estimate, stay under this."""
_CACHED_CHUNKS = 2
"""Decoded chunks kept, so a boomerang's turn and a writer's chunk straddling two decode chunks re-decode nothing."""

Progress = Callable[[int, int], None]


def frames_per_chunk(vae, estimate_per_frame: float) -> int:
    """How many frames to hand the VAE at once; `estimate_per_frame` is its memory_used_* for one frame. On a GPU
    CHUNK_FRAMES bounds the float frames in RAM; the VAE splits further by free VRAM itself."""
    device = getattr(vae, "device", None)
    if getattr(device, "type", "cpu") not in ("cpu", "mps"):
        return frames.CHUNK_FRAMES
    return max(1, min(frames.CHUNK_FRAMES, int(CPU_CHUNK_BYTES // max(1.0, estimate_per_frame))))


def _check_image_vae(vae, where: str) -> None:
    """`where` starts the message: the node and input, e.g. "Video Combine: latents"."""
    if vae is None or not callable(getattr(vae, "decode", None)):
        raise ValueError(f"{where} needs a VAE: connect the checkpoint's VAE (or a VAE Loader) to vae")
    if getattr(vae, "latent_dim", 2) != 2:
        raise ValueError(f"{where}: this VAE works on video latents (several frames per latent), which cannot be "
                         f"split into chunks of single frames; use VAE Decode / VAE Encode with images instead")


class DecodedFrames:
    """An IMAGE batch that never exists whole: frame i is decoded from the latent when a writer asks for it.

    Stands in for the IMAGE tensor in Video Combine's writers, which only read `shape` and single frames in
    output order. Frames are decoded a chunk at a time and the last two chunks kept, so a pass in order decodes
    each frame once; each further pass (one per written format) decodes again, and so does a boomerang's reversed
    half, except the chunks kept at its turn. `decoded_frames` counts the work.
    """

    ndim = 4

    def __init__(self, vae, samples: torch.Tensor, node: str, progress: Progress | None = None):
        _check_image_vae(vae, f"{node}: latents")
        if not isinstance(samples, torch.Tensor) or samples.ndim != 4:
            shape = tuple(samples.shape) if isinstance(samples, torch.Tensor) else type(samples).__name__
            raise ValueError(f"{node}: latents must be an image latent batch [frames, channels, height, width], "
                             f"got {shape}; decode video latents with VAE Decode and connect images")
        if samples.shape[0] == 0:
            raise ValueError(f"{node}: latents is an empty batch (0 frames); connect a node that outputs frames")
        channels = getattr(vae, "latent_channels", samples.shape[1])
        if samples.shape[1] != channels:
            raise ValueError(f"{node}: latents have {samples.shape[1]} channels but the vae expects {channels}; "
                             f"connect the VAE of the model that made these latents")
        self._vae = vae
        self._samples = samples
        self._progress = progress
        estimate = vae.memory_used_decode((1, *samples.shape[1:]), vae.vae_dtype)
        self.chunk = frames_per_chunk(vae, estimate)
        self.decoded_frames = 0
        self._cache: OrderedDict[int, torch.Tensor] = OrderedDict()
        first = self._decoded_chunk(0)
        self.shape = torch.Size((samples.shape[0], *first.shape[1:]))

    def __len__(self) -> int:
        return self.shape[0]

    def _decoded_chunk(self, number: int) -> torch.Tensor:
        if number in self._cache:
            self._cache.move_to_end(number)
            return self._cache[number]
        start = number * self.chunk
        latent = self._samples[start:start + self.chunk]
        images = self._vae.decode(latent)
        if images.ndim == 5:
            images = images.reshape(-1, *images.shape[-3:])
        self.decoded_frames += latent.shape[0]
        if self._progress is not None:
            self._progress(min(start + self.chunk, self._samples.shape[0]), self._samples.shape[0])
        self._cache[number] = images
        while len(self._cache) > _CACHED_CHUNKS:
            self._cache.popitem(last=False)
        return images

    def __getitem__(self, index: int) -> torch.Tensor:
        if not isinstance(index, int):
            raise TypeError("DecodedFrames gives one frame at a time; index it with an int")
        if not -len(self) <= index < len(self):
            raise IndexError(f"frame {index} of a {len(self)}-frame latent batch")
        index %= len(self)
        return self._decoded_chunk(index // self.chunk)[index % self.chunk]

    def reorder(self, order: list[int]) -> torch.Tensor:
        """The decoded frames in `order` as a real IMAGE tensor: for consumers that need all frames at once."""
        out = torch.empty((len(order), *self.shape[1:]), dtype=torch.float32)
        for position, index in enumerate(order):
            out[position].copy_(self[index])
        return out


def combine_source(images, latents, vae, node: str, progress: Progress | None = None):
    """What Video Combine writes: the IMAGE batch, or the latents decoded on demand (the node has made sure that
    not both are given)."""
    if images is not None:
        return images
    if latents is None:
        raise ValueError(f"{node}: nothing to save: connect images, or latents together with a vae, or a video")
    if not isinstance(latents, dict) or "samples" not in latents:
        raise ValueError(f"{node}: latents is not a LATENT (a dict with 'samples')")
    return DecodedFrames(vae, latents["samples"], node, progress)


def encode_stream(stream: VideoStream, vae, *, check_interrupt: Callable[[], None] | None = None,
                  progress: Progress | None = None) -> dict:
    """Read `stream` a chunk at a time and VAE-encode each chunk into one LATENT ({"samples": tensor}).

    Errors carry no node name; the node adds it, as it does for the reader's.
    """
    _check_image_vae(vae, "vae")
    estimate = vae.memory_used_encode((1, 3, stream.height, stream.width), vae.vae_dtype)
    chunk = frames_per_chunk(vae, estimate)
    total = stream.frame_count
    samples = None
    done = 0
    for block in stream.chunks(chunk):
        if check_interrupt is not None:
            check_interrupt()
        encoded = vae.encode(block)
        if samples is None:
            samples = torch.empty((total, *encoded.shape[1:]), dtype=encoded.dtype, device=encoded.device)
        samples[done:done + block.shape[0]].copy_(encoded)
        done += block.shape[0]
        if progress is not None:
            progress(done, total)
    if samples is None or done == 0:
        raise ValueError(f"video file {stream.path}: no frame could be decoded")
    if done < total:
        log.warning("%s: container lists %d frames but only %d decoded", stream.path, total, done)
        samples = samples[:done]
    log.info("encoded %d frames %dx%d of %s to latents %s in chunks of %d", done, stream.width, stream.height,
             stream.path, tuple(samples.shape), chunk)
    return {"samples": samples}
