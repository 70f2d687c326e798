"""Paths that arrive in a prompt are untrusted: any client of the server can send one.

They resolve inside ComfyUI's input folder. A folder outside it is readable only when the person running the
server lists it in the environment variable ANIMATEFLOW_ALLOW_PATHS (roots separated by os.pathsep); nothing
in a prompt can widen that. Paths are checked after resolving `..` and symlinks, so neither escapes, and the
check runs before any existence test, so a refused path reveals nothing about the file system.
"""

from __future__ import annotations

import os
from pathlib import Path

import folder_paths

ALLOW_ENV = "ANIMATEFLOW_ALLOW_PATHS"


class PathNotAllowedError(PermissionError):
    """A prompt asked for a file outside the folders the server operator allows."""


def allowed_roots() -> list[Path]:
    """The input folder, then each root the operator allowed, all resolved."""
    roots = [Path(folder_paths.get_input_directory())]
    extra = os.environ.get(ALLOW_ENV, "")
    roots += [Path(p).expanduser() for p in extra.split(os.pathsep) if p.strip()]
    return [root.resolve() for root in roots]


def resolve_input_path(value: str, where: str, kind: str = "file") -> Path:
    """The real path for `value` (relative to the input folder, or absolute), if an allowed root holds it.

    `where` names the node and input for error messages, e.g. "Load Video (Path): video_path"; `kind` is
    "file" or "folder" and is checked after the policy.
    """
    text = value.strip().strip('"').strip("'")
    if not text:
        raise ValueError(f"{where} is empty: give a {kind} inside ComfyUI's input folder")
    roots = allowed_roots()
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = roots[0] / path
    real = path.resolve()
    if not any(real == root or real.is_relative_to(root) for root in roots):
        raise PathNotAllowedError(
            f"{where}: '{text}' is outside ComfyUI's input folder ({roots[0]}). Move it into that folder, or, "
            f"if you run the server, allow its folder by setting the environment variable {ALLOW_ENV} "
            f"(folders separated by '{os.pathsep}') before starting ComfyUI"
        )
    if kind == "folder" and not real.is_dir():
        raise FileNotFoundError(f"{where}: folder not found: {real}")
    if kind == "file" and not real.is_file():
        raise FileNotFoundError(f"{where}: file not found: {real}")
    return real
