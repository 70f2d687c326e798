"""A folder of frames → IMAGE batch, plus a MASK batch for the original extension's video-inpainting layout.

That layout is a folder with `image/` (the frames) and `mask/` (one mask per frame, white = repaint) subfolders.
Frames sort naturally (frame2 before frame10) since exporters rarely zero-pad. The batch is allocated once and
filled file by file, so memory stays close to the output tensors. Every frame is a file of its own that may be a
link, so each one goes through the caller's path check (links leading outside the allowed folders are refused), and
the file opened is the link's resolved target, the one that was checked.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .read_errors import MediaReadError, reading

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


def natural_key(name: str) -> list:
    """Sort key comparing digit runs as numbers: frame2 < frame10."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.lower()) for part in re.split(r"(\d+)", name)]


def list_images(folder: Path, check_path: Callable[[Path], Path] = Path.resolve) -> list[Path]:
    """The images in `folder` in natural order, each as the real path `check_path` returns (it may refuse one)."""
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    return [check_path(p) for p in sorted(files, key=lambda p: natural_key(p.name))]


def _open(path: Path, mode: str) -> Image.Image:
    with reading(path, "image", "re-save it as PNG"):
        try:
            with Image.open(path) as img:
                return ImageOps.exif_transpose(img).convert(mode)
        except (UnidentifiedImageError, OSError) as err:
            raise MediaReadError(f"cannot read image {path}: not an image or corrupt ({err})") from err


def _fill(files: list[Path], mode: str, out: torch.Tensor, reference: Path) -> None:
    """Decode each file straight into its slot of `out` ([B,H,W,3] or [B,H,W]); sizes must match `reference`."""
    size = (out.shape[2], out.shape[1])
    for i, path in enumerate(files):
        img = _open(path, mode)
        if img.size != size:
            raise MediaReadError(
                f"image {path} is {img.size[0]}x{img.size[1]} but {reference} is {size[0]}x{size[1]}: "
                "every frame (and mask) of a sequence must have the same size"
            )
        out[i].copy_(torch.from_numpy(np.array(img))).div_(255.0)


def load_image_sequence(folder: Path, check_path: Callable[[Path], Path] = Path.resolve
                        ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """IMAGE [B,H,W,3] and, with `image/` + `mask/` subfolders, MASK [B,H,W] (else None), both 0..1.

    `check_path` maps each listed file to the real path to open, or raises when it is not allowed.
    """
    image_dir, mask_dir = folder / "image", folder / "mask"
    layout = image_dir.is_dir() and mask_dir.is_dir()
    frames = list_images(image_dir if layout else folder, check_path)
    if not frames:
        where = image_dir if layout else folder
        raise MediaReadError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in folder {where}")
    width, height = _open(frames[0], "RGB").size
    images = torch.empty((len(frames), height, width, 3), dtype=torch.float32)
    _fill(frames, "RGB", images, frames[0])
    if not layout:
        return images, None
    masks = list_images(mask_dir, check_path)
    if len(masks) != len(frames):
        raise MediaReadError(
            f"{mask_dir} has {len(masks)} masks but {image_dir} has {len(frames)} images: "
            "give exactly one mask per frame"
        )
    mask = torch.empty((len(frames), height, width), dtype=torch.float32)
    _fill(masks, "L", mask, frames[0])
    return images, mask
