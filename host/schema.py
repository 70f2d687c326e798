"""Optional fields of the V3 node schema that only newer hosts know: the pack declares them where the host has them
and goes without them elsewhere (ComfyUI 0.3.75 has neither)."""

from __future__ import annotations

import dataclasses
import functools
import inspect

from comfy_api.latest import io


@functools.cache
def supports(field: str) -> bool:
    """Whether the running ComfyUI's V3 schema knows an optional field: `search_aliases` on io.Schema or `advanced`
    on inputs."""
    if field == "search_aliases":
        return field in {f.name for f in dataclasses.fields(io.Schema)}
    if field == "advanced":
        return field in inspect.signature(io.Input.__init__).parameters
    raise ValueError(f"unknown schema field {field!r}")
