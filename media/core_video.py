"""ComfyUI's own VIDEO type in and out of our nodes, so they sit between core's Load Video / Create Video / Save
Video / Get Video Components and other packs without converter nodes.

A VIDEO (comfy_api's VideoInput) knows its frames, audio and frame rate on every host we support. Newer hosts
(0.33.0) add its bit depth (8 or 10) and colour space in core's words ("sRGB", "HDR" for BT.2020 HLG, "HDR PQ",
"auto" when unknown), a `bit_depth` for VideoFromComponents, and an alpha plane among the components; 0.3.75 has
none of these. `host_video_features` is the one place that tells the hosts apart.
"""

from __future__ import annotations

import functools
import inspect
import logging
from dataclasses import dataclass
from fractions import Fraction

import torch
from comfy_api.latest import InputImpl, Types

from . import video_reader

log = logging.getLogger(__name__)

SDR = "sRGB"
"""Core's name for what every writer of ours stores: BT.709 primaries, SDR (Y'CbCr BT.709, RGB sRGB)."""
HDR_SPACES = ("HDR", "HDR PQ")


class CoreVideoError(ValueError):
    """A VIDEO input could not be used (its frames cannot be decoded, or it is HDR, which our writers do not
    store); the message says why and what to do."""


@dataclass(frozen=True)
class VideoFeatures:
    bit_depth: bool
    """VideoInput.get_bit_depth and VideoFromComponents(bit_depth=...)."""
    color_space: bool
    """VideoInput.get_color_space."""


@functools.cache
def host_video_features() -> VideoFeatures:
    params = inspect.signature(InputImpl.VideoFromComponents.__init__).parameters
    return VideoFeatures(bit_depth="bit_depth" in params,
                         color_space=callable(getattr(InputImpl.VideoFromComponents, "get_color_space", None)))


@dataclass(frozen=True)
class VideoFrames:
    """A VIDEO decoded for our writers."""

    images: torch.Tensor
    audio: dict | None
    fps: float
    alpha: torch.Tensor | None
    bit_depth: int
    color_space: str


def frames_of(video) -> VideoFrames:
    """Decode a VIDEO into an IMAGE batch with its audio, frame rate, alpha, bit depth and colour space (8 and
    "sRGB" where the host does not say).

    Core decodes its own VIDEO. Where that fails on a whole file given by path (core's reader takes a file's
    tags as strict UTF-8, so a GIF with a Latin-1 comment fails there), our reader, which reads tags leniently,
    decodes the same file; its own errors name the file.
    """
    try:
        return _core_frames(video)
    except CoreVideoError:
        raise
    except Exception as err:  # noqa: BLE001 - a VIDEO from any node may fail its decode in any library's way
        path = _whole_file(video)
        if path is None:
            raise CoreVideoError(f"video could not be decoded ({type(err).__name__}: {err}); check the node that "
                                 "made it") from err
        log.info("core could not decode %s (%s: %s); reading it with the pack's reader", path, type(err).__name__,
                 err)
    loaded = video_reader.read_video(path)
    return VideoFrames(loaded.images, loaded.audio, loaded.fps, None, loaded.bit_depth, SDR)


def _core_frames(video) -> VideoFrames:
    features = host_video_features()
    color_space = video.get_color_space() if features.color_space else SDR
    if color_space in HDR_SPACES:
        raise CoreVideoError(
            f"video is {color_space} (BT.2020 {'HLG' if color_space == 'HDR' else 'PQ'}), but these files are "
            "written as SDR (BT.709 / sRGB) and its colours would be wrong; save it with core Save Video (color "
            "space HDR) instead, or convert it to SDR first")
    components = video.get_components()
    bit_depth = int(video.get_bit_depth()) if features.bit_depth else 8
    return VideoFrames(components.images, components.audio, float(components.frame_rate),
                       getattr(components, "alpha", None), 10 if bit_depth > 8 else 8,
                       SDR if color_space == "auto" else color_space)


def _whole_file(video) -> str | None:
    """The path of a VIDEO that is a whole file on disk (core Load Video's), untrimmed; else None."""
    if not isinstance(video, InputImpl.VideoFromFile):
        return None
    source = video.get_stream_source()
    window = getattr(video, "get_active_trim_window", None)
    try:
        untrimmed = not callable(window) or tuple(window()) == (0.0, 0.0)
    except Exception:  # noqa: BLE001 - a negative start makes core read the file's duration, which can fail alike
        return None
    return source if isinstance(source, str) and untrimmed else None


def video_from_frames(images: torch.Tensor, fps: float, audio: dict | None, bit_depth: int = 8):
    """A VIDEO holding the frames themselves (no copy); its bit depth is the one saving it uses, where the host
    knows bit depths."""
    components = Types.VideoComponents(images=images, audio=audio, frame_rate=Fraction(fps).limit_denominator(1001))
    if host_video_features().bit_depth:
        return InputImpl.VideoFromComponents(components, bit_depth=bit_depth)
    return InputImpl.VideoFromComponents(components)


def video_from_file(path: str):
    return InputImpl.VideoFromFile(path)
