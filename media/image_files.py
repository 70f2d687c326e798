"""PNG frames and the TXT generation info that accompany a video."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo


def png_info(metadata: dict[str, object] | None) -> PngInfo | None:
    """Text chunks as ComfyUI's SaveImage writes them, so a dropped frame restores the graph."""
    if not metadata:
        return None
    info = PngInfo()
    for key, value in metadata.items():
        info.add_text(key, value if isinstance(value, str) else json.dumps(value))
    return info


def write_png(frame: np.ndarray, path: str, info: PngInfo | None) -> None:
    """An [H, W, 3] (RGB) or [H, W, 4] (RGBA) uint8 frame as PNG."""
    Image.fromarray(frame).save(path, format="PNG", pnginfo=info, compress_level=4)


def generation_info(prompt: dict | None, facts: dict[str, object]) -> str:
    """Readable text: the video's facts, then each node's literal settings from the prompt."""
    lines = [f"{key}: {value}" for key, value in facts.items()]
    if prompt:
        lines.append("")
        lines.append("nodes:")
        for node_id, node in sorted(prompt.items(), key=lambda item: str(item[0])):
            settings = {k: v for k, v in node.get("inputs", {}).items() if not isinstance(v, list)}
            lines.append(f"  {node_id} {node.get('class_type', '?')}: {json.dumps(settings, sort_keys=True)}")
        lines.append("")
        lines.append("prompt: " + json.dumps(prompt, sort_keys=True))
    return "\n".join(lines) + "\n"


def write_text(text: str, path: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
