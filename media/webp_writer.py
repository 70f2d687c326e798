"""Animated WEBP through Pillow's libwebp animation encoder, with alpha and the workflow in its EXIF.

ffmpeg's libwebp_anim drops the alpha channel in lossy mode (measured with imageio-ffmpeg's 9.0 build), so WEBP
goes through Pillow, as ComfyUI's own SaveAnimatedWEBP does, and its metadata is written the way that node
writes it (EXIF strings "prompt:{...}" and "workflow:{...}"), which is where the editor looks when a WEBP is
dropped on it. Pillow's encoder takes frames from an image that has frames; ours produces each frame when the
encoder seeks to it, so frames stream from the IMAGE batch instead of being held as a list.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
from PIL import Image

# EXIF tags ComfyUI's SaveAnimatedWEBP fills: Model holds the prompt, Make and the tags below it the workflow.
_PROMPT_TAG = 0x0110
_FIRST_EXTRA_TAG = 0x010F
_METHOD = 4  # libwebp's effort 0-6; 4 is its default balance of size and speed


class _StreamedFrames(Image.Image):
    """A multi-frame image whose frames come from an iterator, each made when Pillow seeks to it."""

    def __init__(self, frames: Iterator[np.ndarray], count: int):
        super().__init__()
        self._frames = frames
        self.n_frames = count
        self._index = -1
        self.seek(0)

    def seek(self, index: int) -> None:
        if index <= self._index:  # Pillow seeks back to the first frame once saved; the stream has moved on
            return
        if index != self._index + 1:
            raise ValueError("streamed frames are read once, in order")
        frame = Image.fromarray(next(self._frames))
        self.im = frame.im
        self._mode = frame.mode
        self._size = frame.size
        self._index = index

    def tell(self) -> int:
        return self._index


def exif_metadata(metadata: dict[str, object] | None) -> bytes:
    exif = Image.Exif()
    tag = _FIRST_EXTRA_TAG
    for key, value in (metadata or {}).items():
        text = f"{key}:{value if isinstance(value, str) else json.dumps(value)}"
        if key == "prompt":
            exif[_PROMPT_TAG] = text
        else:
            exif[tag] = text
            tag -= 1
    return exif.tobytes()


def write_webp(frames: Iterator[np.ndarray], count: int, path: str, fps: float, *, loop_count: int = 0,
               quality: int = 90, metadata: dict[str, object] | None = None) -> None:
    """Write `count` frames ([H, W, 3|4] uint8) as an animated WEBP; quality 100 is lossless."""
    stream = _StreamedFrames(frames, count)
    stream.save(path, format="WEBP", save_all=True, duration=1000.0 / fps, loop=loop_count,
                quality=quality, lossless=quality >= 100, method=_METHOD,
                exif=exif_metadata(metadata))
