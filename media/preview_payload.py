"""What Video Combine tells the editor about its files: everything a browser may show, best first.

Videos come first (H.264 MP4 plays almost everywhere, then VP9 WEBM, AV1, H.265), then the animations (WEBP,
GIF), then the poster frame (a PNG of the first frame), so a preview walks down the list until something plays.
With an alpha channel, the files that keep it go first in each group. Each item carries the MIME type with
codec string that a browser's `canPlayType` answers for; ProRes and FFV1 are never listed (no browser plays them).
"""

from __future__ import annotations

from .ffmpeg_writer import padded_size
from .video_formats import FORMATS
from .video_writer import CombineResult, SavedFile

VIDEO_ORDER = ("mp4", "webm", "av1-mp4", "h265-mp4")
ANIMATION_ORDER = ("webp", "gif")


def _item(saved: SavedFile, role: str, mime: str, size: tuple[int, int], alpha: bool, result: CombineResult,
          fps: float) -> dict:
    return {"filename": saved.filename, "subfolder": saved.subfolder, "type": saved.folder_type,
            "format": saved.mime, "mime": mime, "role": role, "frame_rate": fps, "frame_count": result.frame_count,
            "width": size[0], "height": size[1], "alpha": alpha}


def _ordered(result: CombineResult, kinds: tuple[str, ...]) -> list[SavedFile]:
    found = [saved for kind in kinds for saved in result.files if saved.kind == kind]
    if result.has_alpha:
        found.sort(key=lambda saved: not (saved.layout is not None and saved.layout.alpha))
    return found


def preview_items(result: CombineResult, fps: float) -> list[dict]:
    """The `animateflow` UI list: playable videos, then WEBP/GIF, then the poster PNG."""
    size = (result.width, result.height)
    items = []
    for saved in _ordered(result, VIDEO_ORDER):
        fmt = FORMATS[saved.kind]
        items.append(_item(saved, "video", fmt.browser_mime(saved.layout.depth),
                           padded_size(fmt, *size), saved.layout.alpha, result, fps))
    for saved in _ordered(result, ANIMATION_ORDER):
        alpha = saved.layout is not None and saved.layout.alpha
        items.append(_item(saved, "animation", saved.mime, size, alpha, result, fps))
    if result.poster is not None:
        items.append(_item(result.poster, "poster", "image/png", size, result.has_alpha, result, fps))
    return items
