"""The one error type every media reader raises for a file it cannot use.

Readers (video files, image sequences) know the file and what is wrong with it, not which node asked: their
messages name the file and the fix, and the node that called them puts its own name in front. Files come from
users and from any client of the server, so whatever the decoding libraries raise on malformed input (PyAV's
FFmpeg errors, a UnicodeDecodeError from a tag, a TypeError from a half-parsed header) is turned into this type
here rather than reaching the user as a bare library exception.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path


class MediaReadError(ValueError):
    """A file could not be read (corrupt, not media, unsupported, too large to load); the message names it."""


@contextlib.contextmanager
def reading(path: Path, what: str = "video file", fix: str = "re-export it as MP4 with a current tool"
            ) -> Iterator[None]:
    """Let our own errors through (they already name the file); turn anything else a library raises while reading
    `path` into a MediaReadError that names the file and `fix`. Missing files and refused paths keep their types."""
    try:
        yield
    except (MediaReadError, FileNotFoundError, PermissionError, MemoryError):
        raise
    except Exception as err:  # noqa: BLE001 - malformed files make libraries raise anything
        raise MediaReadError(f"cannot read {what} {path}: corrupt or not supported ({type(err).__name__}: {err}); "
                             f"{fix}") from err
