"""Paths that arrive in a prompt are untrusted: any client of the server can send one.

They resolve inside ComfyUI's input folder. A folder outside it is readable only when the person running the
server lists it in the environment variable ANIMATEFLOW_ALLOW_PATHS (roots separated by os.pathsep); nothing
in a prompt can widen that. Paths are checked after resolving `..` and symlinks, so neither escapes, and the
check runs before any existence test, so a refused path reveals nothing about the file system.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..host import folders

ALLOW_ENV = "ANIMATEFLOW_ALLOW_PATHS"


class PathNotAllowedError(PermissionError):
    """A prompt asked for a file outside the folders the server operator allows."""


def allowed_roots() -> list[Path]:
    """The input folder, then each root the operator allowed, all resolved."""
    roots = [Path(folders.input_dir())]
    extra = os.environ.get(ALLOW_ENV, "")
    roots += [Path(p).expanduser() for p in extra.split(os.pathsep) if p.strip()]
    return [root.resolve() for root in roots]


def _refuse(where: str, text: str, roots: list[Path]) -> PathNotAllowedError:
    return PathNotAllowedError(
        f"{where}: '{text}' is outside ComfyUI's input folder ({roots[0]}). Move it into that folder, or, "
        f"if you run the server, allow its folder by setting the environment variable {ALLOW_ENV} "
        f"(folders separated by '{os.pathsep}') before starting ComfyUI"
    )


def _is_inside(real: Path, roots: list[Path]) -> bool:
    return any(real == root or real.is_relative_to(root) for root in roots)


def check_allowed(path: Path, where: str) -> Path:
    """The real path of `path` (a file found inside an allowed folder, e.g. one frame of a sequence), refused
    when it is a link leading outside every allowed root."""
    roots = allowed_roots()
    real = path.resolve()
    if not _is_inside(real, roots):
        raise PathNotAllowedError(
            f"{where}: {path.name} is a link leading outside ComfyUI's input folder ({roots[0]}); copy the file "
            f"in instead, or, if you run the server, allow its folder in the environment variable {ALLOW_ENV}"
        )
    return real


def resolve_input_path(value: str, where: str, kind: str = "file") -> Path:
    """The real path for `value` (relative to the input folder, or absolute), if an allowed root holds it.

    `where` names the node and input for error messages, e.g. "Load Video (Path): video_path"; `kind` is
    "file" or "folder" and is checked after the policy.
    """
    text = value.strip().strip('"').strip("'")
    if not text:
        raise ValueError(f"{where} is empty: give a {kind} inside ComfyUI's input folder")
    if "\0" in text:
        raise ValueError(f"{where} contains a NUL character, which no file name can hold; give the {kind}'s name "
                         "without it")
    roots = allowed_roots()
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = roots[0] / path
    real = path.resolve()
    if not _is_inside(real, roots):
        raise _refuse(where, text, roots)
    try:
        found = real.is_dir() if kind == "folder" else real.is_file()
    except OSError as err:  # ENAMETOOLONG and the like: the name itself is unusable
        shown = text if len(text) <= 80 else text[:80] + "…"
        raise ValueError(f"{where}: '{shown}' ({len(text)} characters) cannot be used as a path ({err.strerror}); "
                         f"give a shorter {kind} name inside ComfyUI's input folder") from err
    if not found:
        raise FileNotFoundError(f"{where}: {kind} not found: {real}")
    return real
