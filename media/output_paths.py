"""Where Video Combine may write, and how a file appears there only once it is complete.

A prompt can come from any client of the server, so the filename prefix is untrusted: it may name a
subfolder of the output folder but never leave it, not even through a link already in the output folder, and
the check runs before anything touches the disk (ComfyUI's get_save_image_path creates the folder it names).
Files are written under a hidden temporary name in their final folder and renamed into place, so a failed or
interrupted encode never leaves a partial file that a user (or the next run's counter) could mistake for a
result. A server killed mid-encode still leaves its temporary file; the next run in that folder removes ours
once they are old enough that no encode can still be writing them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from ..host import folders

log = logging.getLogger(__name__)

_DRIVE = re.compile(r"^[A-Za-z]:")
# Room the file name needs beyond the prefix's last part: "_00001_00000.webm" plus the temporary name's
# leading dot and ".1a2b3c4d.partial.gifsicle".
_NAME_ROOM = 48
_PATH_MAX = 4096
# Only our own temporary names: "." + final name + "." + 8 hex digits + ".partial" (+ gifsicle's ".gifsicle").
_PARTIAL = re.compile(r"^\..+\.[0-9a-f]{8}\.partial(\.gifsicle)?$")
STALE_PARTIAL_SECONDS = 3600


class UnsafePrefixError(ValueError):
    """The filename prefix would write outside ComfyUI's output folder."""


class UnwritablePrefixError(ValueError):
    """The filename prefix names a folder that cannot be made or written (a file in the way, permissions)."""


def check_prefix(prefix: str, node: str) -> str:
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


def _name_max(folder: str) -> int:
    with contextlib.suppress(OSError, ValueError, AttributeError):
        return os.pathconf(folder, "PC_NAME_MAX")
    return 255


def check_prefix_length(prefix: str, output_dir: str, node: str) -> None:
    """Refuse prefixes whose folder or file names the file system cannot hold, with the limit in the message
    (the OS would only say 'File name too long', after the folders were made)."""
    name_max = _name_max(output_dir)
    parts = [part for part in re.split(r"[\\/]+", prefix) if part]
    shown = prefix if len(prefix) <= 60 else prefix[:60] + "…"
    where = f"{node}: filename_prefix '{shown}' ({len(prefix)} characters)"
    for index, part in enumerate(parts):
        limit = name_max - _NAME_ROOM if index == len(parts) - 1 else name_max
        size = len(part.encode("utf-8", "surrogateescape"))
        if size > limit:
            what = "file name part" if index == len(parts) - 1 else "folder name"
            raise UnsafePrefixError(f"{where} is too long: its {what} is {size} bytes, but this file system holds "
                                    f"{limit} at most there (names up to {name_max} bytes, less room for the counter "
                                    "and extension); shorten it")
    total = len(os.path.join(output_dir, prefix).encode("utf-8", "surrogateescape")) + _NAME_ROOM
    if total > _PATH_MAX:
        raise UnsafePrefixError(f"{where} is too long: the full path would be {total} bytes, above the "
                                f"{_PATH_MAX} a path may have; shorten it")


def check_folder_inside(prefix: str, folder: str, output_dir: str, node: str) -> None:
    """Refuse a prefix whose folder resolves outside `output_dir` through a link."""
    real_root = os.path.realpath(output_dir)
    if os.path.commonpath((real_root, os.path.realpath(folder))) != real_root:
        raise UnsafePrefixError(f"{node}: filename_prefix {prefix!r} resolves outside the output folder "
                                f"(through a link); choose another subfolder")


def sweep_stale_partials(folder: str, max_age_s: float = STALE_PARTIAL_SECONDS) -> int:
    """Remove our temporary files in `folder` untouched for `max_age_s`: what a killed server left behind.

    A running encode writes its file continuously, so an hour without a write means nobody owns it.
    """
    removed = 0
    cutoff = time.time() - max_age_s
    with contextlib.suppress(OSError):
        with os.scandir(folder) as entries:
            for entry in entries:
                if not _PARTIAL.match(entry.name) or not entry.is_file(follow_symlinks=False):
                    continue
                with contextlib.suppress(OSError):
                    if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                        os.unlink(entry.path)
                        removed += 1
    if removed:
        log.info("removed %d leftover temporary file(s) of an interrupted run in %s", removed, folder)
    return removed


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


def reserve_slot(prefix: str, width: int, height: int, output_dir: str | None, node: str) -> OutputSlot:
    """Next free counter for the prefix, numbered like ComfyUI's SaveImage so both sort together."""
    check_prefix(prefix, node)
    output_dir = output_dir or folders.output_dir()
    check_prefix_length(prefix, output_dir, node)
    # Before ComfyUI creates the folder (through a link already there), and again on the folder it made.
    check_folder_inside(prefix, os.path.join(output_dir, os.path.dirname(os.path.normpath(prefix))), output_dir, node)
    try:
        folder, name, counter, subfolder, _ = folders.save_path(prefix, output_dir, width, height)
    except OSError as err:  # a file where a subfolder should be, a folder we may not list or create
        raise UnwritablePrefixError(f"{node}: filename_prefix {prefix!r} cannot be written in the output folder "
                                    f"({err.strerror}: {err.filename}); choose another prefix or fix the folder's "
                                    "permissions") from err
    if not os.access(folder, os.W_OK):
        raise UnwritablePrefixError(f"{node}: filename_prefix {prefix!r}: the folder {folder} is not writable; "
                                    "choose another prefix or fix the folder's permissions")
    check_folder_inside(prefix, folder, output_dir, node)
    sweep_stale_partials(folder)
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
