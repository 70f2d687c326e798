"""Animated GIF through Pillow, with an optional gifsicle pass for smaller files.

GIF delays are whole centiseconds, so the frame delay is rounded to 10 ms: 8 fps plays at 8.33 fps.
Browsers play delays under 20 ms as 100 ms, so a GIF never goes faster than 50 fps.
Each frame gets its own adaptive 256-colour palette; dithering trades banding for noise. Pillow merges
consecutive identical frames into one longer frame, which plays the same but counts fewer frames.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from PIL import Image

log = logging.getLogger(__name__)

DITHER = {"floyd_steinberg": Image.Dither.FLOYDSTEINBERG, "none": Image.Dither.NONE}


def frame_delay_ms(fps: float) -> int:
    """The per-frame delay a GIF can store and browsers honour: a multiple of 10 ms, at least 20 ms."""
    return max(2, round(100.0 / fps)) * 10


def _palettised(frames: Iterable[np.ndarray], dither: str) -> Iterable[Image.Image]:
    for frame in frames:
        yield Image.fromarray(frame, "RGB").quantize(256, method=Image.Quantize.MEDIANCUT, dither=DITHER[dither])


def write_gif(frames: Iterable[np.ndarray], path: str, fps: float, *, loop_count: int = 0,
              dither: str = "floyd_steinberg", optimize: bool = True,
              metadata: dict[str, object] | None = None) -> None:
    """Write frames ([H, W, 3] uint8) as a GIF; `loop_count` 0 loops forever (the NETSCAPE value)."""
    images = iter(_palettised(frames, dither))
    first = next(images)
    extra = {}
    if metadata:
        extra["comment"] = json.dumps(metadata)
    first.save(path, format="GIF", save_all=True, append_images=images, duration=frame_delay_ms(fps),
               loop=loop_count, optimize=optimize, disposal=1, **extra)


@dataclass(frozen=True)
class GifsicleResult:
    """What the gifsicle pass did: sizes in bytes, or why it did not run."""

    ran: bool
    before: int
    after: int
    note: str


def shrink_with_gifsicle(path: str, optimize_level: int, lossy: int, node: str) -> GifsicleResult:
    """Rewrite the GIF at `path` in place with gifsicle; a missing program is reported, not raised."""
    before = os.path.getsize(path)
    exe = shutil.which("gifsicle")
    if exe is None:
        note = "gifsicle is not installed (Debian: apt-get install gifsicle); GIF left as Pillow wrote it"
        log.warning("%s: %s", node, note)
        return GifsicleResult(False, before, before, note)
    shrunk = path + ".gifsicle"
    cmd = [exe, f"-O{optimize_level}" if optimize_level else "--no-warnings"]
    if lossy:
        cmd.append(f"--lossy={lossy}")
    cmd += [path, "-o", shrunk]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        if os.path.exists(shrunk):
            os.unlink(shrunk)
        raise RuntimeError(f"{node}: gifsicle failed on the GIF: {result.stderr.strip()[-2000:]}")
    os.replace(shrunk, path)
    after = os.path.getsize(path)
    note = f"gifsicle -O{optimize_level} --lossy={lossy}: {before} -> {after} bytes"
    log.info("%s: %s", node, note)
    return GifsicleResult(True, before, after, note)
