"""Where Video Combine may write, and how a file appears there only once it is complete.

A prompt can come from any client of the server, so the filename prefix is untrusted: it may name a
subfolder of the output folder but never leave it. Files are written under a hidden temporary name in
their final folder and renamed into place, so a failed or interrupted encode never leaves a partial file
that a user (or the next run's counter) could mistake for a result.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import folder_paths

_DRIVE = re.compile(r"^[A-Za-z]:")


class UnsafePrefixError(ValueError):
    """The filename prefix would write outside ComfyUI's output folder."""


class UnwritablePrefixError(ValueError):
    """The filename prefix names a folder that cannot be made or written (a file in the way, permissions)."""


def check_prefix(prefix: str, node: str = "Video Combine") -> str:
    """Refuse prefixes that are empty, absolute, carry a drive letter or climb with `..`."""
    where = f"{node}: filename_prefix {prefix!r}"
    fix = "use a plain name, optionally with subfolders, e.g. 'AnimateFlow' or 'videos/run1'"
    if not prefix or not prefix.strip():
        raise UnsafePrefixError(f"{where} is empty; {fix}")
    if "\0" in prefix:
        raise UnsafePrefixError(f"{where} contains a NUL character; {fix}")
    if prefix.startswith(("/", "\\")) or os.path.isabs(prefix) or _DRIVE.match(prefix):
        raise UnsafePrefixError(f"{where} is an absolute path; files stay in the output folder: {fix}")
    parts = re.split(r"[\\/]+", prefix)
    if any(part == ".." for part in parts):
        raise UnsafePrefixError(f"{where} climbs out with '..'; files stay in the output folder: {fix}")
    if not parts[-1] or parts[-1] == ".":
        raise UnsafePrefixError(f"{where} ends in a folder separator and names no file; {fix}")
    return prefix


@dataclass(frozen=True)
class OutputSlot:
    """One run's file stem: `<folder>/<name>_<counter>_` plus an extension per format."""

    folder: str
    name: str
    counter: int
    subfolder: str

    def filename(self, ext: str, suffix: str = "") -> str:
        return f"{self.name}_{self.counter:05}_{suffix}.{ext}"

    def path(self, ext: str, suffix: str = "") -> str:
        return os.path.join(self.folder, self.filename(ext, suffix))


def reserve_slot(prefix: str, width: int, height: int, output_dir: str | None = None,
                 node: str = "Video Combine") -> OutputSlot:
    """Next free counter for the prefix, numbered like ComfyUI's SaveImage so both sort together."""
    check_prefix(prefix, node)
    output_dir = output_dir or folder_paths.get_output_directory()
    try:
        folder, name, counter, subfolder, _ = folder_paths.get_save_image_path(prefix, output_dir, width, height)
    except OSError as err:  # a file where a subfolder should be, a folder we may not list or create
        raise UnwritablePrefixError(f"{node}: filename_prefix {prefix!r} cannot be written in the output folder "
                                    f"({err.strerror}: {err.filename}); choose another prefix or fix the folder's "
                                    "permissions") from err
    if not os.access(folder, os.W_OK):
        raise UnwritablePrefixError(f"{node}: filename_prefix {prefix!r}: the folder {folder} is not writable; "
                                    "choose another prefix or fix the folder's permissions")
    real_root = os.path.realpath(output_dir)
    if os.path.commonpath((real_root, os.path.realpath(folder))) != real_root:
        raise UnsafePrefixError(f"{node}: filename_prefix {prefix!r} resolves outside the output folder "
                                f"(through a link); choose another subfolder")
    return OutputSlot(folder, name, counter, subfolder)


@contextlib.contextmanager
def atomic_file(final_path: str) -> Iterator[str]:
    """Yield a temporary path beside `final_path`; rename it into place only if the block succeeds."""
    folder, base = os.path.split(final_path)
    temp = os.path.join(folder, f".{base}.{uuid.uuid4().hex[:8]}.partial")
    try:
        yield temp
        os.replace(temp, final_path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
