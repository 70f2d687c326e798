"""Writing small test videos with PyAV: one writer for every test that needs a clip on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import av
import numpy as np

# suffix → (video codec, pixel format, audio codec)
CODECS = {
    ".mp4": ("libx264", "yuv420p", "aac"),
    ".mov": ("mpeg4", "yuv420p", "aac"),
    ".webm": ("libvpx-vp9", "yuv420p", "libopus"),
    ".gif": ("gif", "rgb8", None),
    ".ts": ("libx264", "yuv420p", "aac"),
}
AUDIO_RATE = 48000


def tone(seconds: float, hz: float = 440.0, amplitude: float = 0.5, rate: int = AUDIO_RATE) -> np.ndarray:
    """A stereo sine, float32 [2, samples]."""
    t = np.arange(int(rate * seconds)) / rate
    return np.repeat((amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)[None], 2, 0)


def write_clip(path: Path, frames: Iterable[np.ndarray], fps: int = 8, audio: np.ndarray | None = None,
               container_format: str | None = None, options: dict | None = None, h264: bool = False) -> Path:
    """Encode uint8 RGB frames [H, W, 3] (and a stereo float32 [2, samples] track at 48 kHz) with the codecs
    `CODECS` names for the file's suffix, or H.264 in any container (`h264`); sizes come from the first frame."""
    path = Path(path)
    codec, pix_fmt, audio_codec = CODECS[".mp4" if h264 else path.suffix]
    frames = [np.ascontiguousarray(pixels, dtype=np.uint8) for pixels in frames]
    with av.open(str(path), "w", format=container_format) as container:
        video = container.add_stream(codec, rate=fps)
        video.height, video.width = frames[0].shape[:2]
        video.pix_fmt = pix_fmt
        if options:
            video.options = options
        sound = None
        if audio is not None:  # every stream before the first packet: the header is written then
            sound = container.add_stream(audio_codec, rate=AUDIO_RATE)
            sound.layout = "stereo"
        for pixels in frames:
            container.mux(video.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(video.encode())
        if sound is not None:
            for start in range(0, audio.shape[1], 960):
                chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio[:, start:start + 960]), format="fltp",
                                                   layout="stereo")
                chunk.sample_rate, chunk.pts = AUDIO_RATE, start
                container.mux(sound.encode(chunk))
            container.mux(sound.encode())
    return path
