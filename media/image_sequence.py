"""A folder of frames → IMAGE batch, plus a MASK batch for the original extension's video-inpainting layout.

That layout is a folder with `image/` (the frames) and `mask/` (one mask per frame, white = repaint) subfolders;
a plain folder's masks come from the frames' transparency, as ComfyUI's Load Image makes them.
Frames sort naturally (frame2 before frame10) since exporters rarely zero-pad. The batch is allocated once and
filled file by file, so memory stays close to the output tensors. Every frame is a file of its own that may be a
link, so each one goes through the caller's path check (links leading outside the allowed folders are refused), and
the file opened is the link's resolved target, the one that was checked. A `Selection` picks which frames load
(skip, every nth, cap, in VideoHelperSuite's order) before any is decoded, the masks in step with the frames.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .read_errors import MediaReadError, reading

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


@dataclass(frozen=True)
class Selection:
    """Which frames load (of the sorted folder, or of a video): the first `skip_first` are skipped, then every
    `every_nth` is kept, then at most `cap` (0: all). VideoHelperSuite's Load Images and Load Video apply their three
    settings in this order."""
    skip_first: int = 0
    every_nth: int = 1
    cap: int = 0

    def __post_init__(self) -> None:
        if self.skip_first < 0 or self.every_nth < 1 or self.cap < 0:
            raise ValueError(f"a frame selection needs skip_first >= 0, every_nth >= 1 and cap >= 0, not {self}")

    def apply(self, items: list) -> list:
        picked = items[self.skip_first::self.every_nth]
        return picked[:self.cap] if self.cap else picked


def natural_key(name: str) -> list:
    """Sort key comparing digit runs as numbers: frame2 < frame10."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.lower()) for part in re.split(r"(\d+)", name)]


def list_images(folder: Path, check_path: Callable[[Path], Path] = Path.resolve) -> list[Path]:
    """The images in `folder` in natural order, each as the real path `check_path` returns (it may refuse one)."""
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    return [check_path(p) for p in sorted(files, key=lambda p: natural_key(p.name))]


def _open(path: Path, mode: str) -> Image.Image:
    """The image in `mode`; "RGBA" asks for the alpha channel and gives RGB when the file has none (an alpha band
    or a palette's transparent entry: where ComfyUI's Load Image finds a mask)."""
    with reading(path, "image", "re-save it as PNG"):
        try:
            with Image.open(path) as img:
                img = ImageOps.exif_transpose(img)
                has_alpha = "A" in img.getbands() or (img.mode == "P" and "transparency" in img.info)
                if mode == "RGBA" and not has_alpha:
                    mode = "RGB"
                return img.convert(mode)
        except (UnidentifiedImageError, OSError) as err:
            raise MediaReadError(f"cannot read image {path}: not an image or corrupt ({err})") from err


def _fill(files: list[Path], mode: str, out: torch.Tensor, reference: Path,
          alpha_masks: torch.Tensor | None = None) -> None:
    """Decode each file straight into its slot of `out` ([B,H,W,3] or [B,H,W]); sizes must match `reference`.

    With `alpha_masks` ([B,H,W] zeros), a frame with transparency writes 1 - alpha into its slot there: the mask
    ComfyUI's Load Image and VideoHelperSuite's Load Images make of it.
    """
    size = (out.shape[2], out.shape[1])
    for i, path in enumerate(files):
        img = _open(path, "RGBA" if alpha_masks is not None else mode)
        if img.size != size:
            raise MediaReadError(
                f"image {path} is {img.size[0]}x{img.size[1]} but {reference} is {size[0]}x{size[1]}: "
                "every frame (and mask) of a sequence must have the same size"
            )
        pixels = torch.from_numpy(np.array(img))
        if img.mode == "RGBA":
            alpha_masks[i].copy_(pixels[..., 3]).div_(-255.0).add_(1.0)
            pixels = pixels[..., :3]
        out[i].copy_(pixels).div_(255.0)


def load_image_sequence(folder: Path, check_path: Callable[[Path], Path] = Path.resolve,
                        selection: Selection = Selection()) -> tuple[torch.Tensor, torch.Tensor]:
    """IMAGE [B,H,W,3] and MASK [B,H,W], both 0..1: the masks from `mask/` with `image/` + `mask/` subfolders,
    else from the frames' transparency (1 - alpha; 0 for a frame without).

    `check_path` maps each listed file to the real path to open, or raises when it is not allowed. Only the frames
    `selection` picks are decoded.
    """
    image_dir, mask_dir = folder / "image", folder / "mask"
    layout = image_dir.is_dir() and mask_dir.is_dir()
    where = image_dir if layout else folder
    listed = list_images(where, check_path)
    if not listed:
        raise MediaReadError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in folder {where}")
    masks = list_images(mask_dir, check_path) if layout else []
    if layout and len(masks) != len(listed):
        raise MediaReadError(
            f"{mask_dir} has {len(masks)} masks but {image_dir} has {len(listed)} images: "
            "give exactly one mask per frame"
        )
    frames = selection.apply(listed)
    if not frames:
        raise MediaReadError(f"the {len(listed)} images in folder {where} are all skipped: skip fewer than "
                             f"{selection.skip_first} frames")
    width, height = _open(frames[0], "RGB").size
    images = torch.empty((len(frames), height, width, 3), dtype=torch.float32)
    if not layout:
        alpha_masks = torch.zeros((len(frames), height, width), dtype=torch.float32)
        _fill(frames, "RGB", images, frames[0], alpha_masks)
        return images, alpha_masks
    _fill(frames, "RGB", images, frames[0])
    masks = selection.apply(masks)
    mask = torch.empty((len(frames), height, width), dtype=torch.float32)
    _fill(masks, "L", mask, frames[0])
    return images, mask
