"""Open one video file so that ffmpeg reads that file and nothing else.

Some ffmpeg demuxers open further files on their own: an HLS playlist (.m3u8) or a concat list names other files
or URLs, an image2 pattern expands to a numbered series, an SDP description opens network sockets, a QuickTime
reference movie points at media stored elsewhere. Checking the path we hand to ffmpeg says nothing about those, and
anything the reader decodes can end up in output/ where any client can fetch it. So the checked file is opened here
(never by name inside ffmpeg), ffmpeg gets the open file, only container demuxers that keep everything in that one
file are allowed, QuickTime's external references stay off, and every further open ffmpeg asks for is refused.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import av

from .read_errors import MediaReadError

# ffmpeg names its demuxers by comma-separated aliases ("mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm"); a demuxer is
# allowed when one alias is listed. None of these follows a reference to another file once drefs are off.
SINGLE_FILE_DEMUXERS = ("mov", "mp4", "matroska", "webm", "gif", "avi")
READABLE = "MP4/MOV/M4V, WEBM/MKV, GIF and AVI"

_CONTAINER_OPTIONS = {
    # Checked by avformat_open_input after probing and before the demuxer reads its header.
    "format_whitelist": ",".join(SINGLE_FILE_DEMUXERS),
    # QuickTime data references: off by default in ffmpeg, pinned here so no build or default can turn them on.
    "enable_drefs": "0",
    "use_absolute_path": "0",
}
_BUFFER_BYTES = 1 << 20
METADATA_TEXT = {"metadata_encoding": "utf-8", "metadata_errors": "replace"}
"""Container and stream tags are untrusted text in whatever encoding the writing tool used (old GIF tools write
Latin-1 comments): PyAV decodes them all when the file is opened and, strictly, fails the open on one bad byte.
We read no tag, so a bad byte becomes U+FFFD rather than an unreadable file."""


class UnsafeVideoError(MediaReadError):
    """The file is not a self-contained video: reading it would make ffmpeg open other files or URLs."""


def _describe(head: bytes, name: str) -> str | None:
    """What a refused file looks like, in words a user recognises (ffmpeg only says 'not on whitelist');
    None when it looks like nothing that opens other files."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"#EXTM3U"):
        return "an HLS playlist (m3u8): it lists other files or URLs for ffmpeg to open"
    if text.startswith(b"ffconcat") or text.startswith(b"file "):
        return "an ffmpeg concat list: it names other files for ffmpeg to open"
    if text.startswith(b"v=0"):
        return "an SDP session description: it makes ffmpeg open network streams"
    if head.startswith((b"\x89PNG", b"\xff\xd8\xff", b"BM")) or head[8:12] == b"WEBP":
        pattern = " (ffmpeg reads a name with % as a numbered series of other files)" if "%" in name else ""
        return f"a still image{pattern}; use Load Image Sequence for frames"
    return None


def _refuse_nested(path: Path):
    def io_open(url: str, flags: int, options: dict):
        raise UnsafeVideoError(
            f"{path.name} asks ffmpeg to open another file or URL ({url[:200]!r}); only self-contained video "
            f"files ({READABLE}) are read"
        )

    return io_open


def _open_no_follow(path: str, flags: int) -> int:
    """The resolved path must still be the file that passed the path policy: not a link swapped in since, and
    not a FIFO that would block the server (O_NONBLOCK changes nothing for a regular file)."""
    return os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK)


@contextlib.contextmanager
def open_video(path: Path) -> Iterator[av.container.InputContainer]:
    """An input container reading exactly `path` (already resolved and allowed by the path policy)."""
    try:
        file = open(path, "rb", opener=_open_no_follow)  # noqa: SIM115 - closed below, after the container
    except FileNotFoundError as err:
        raise FileNotFoundError(f"video file not found: {path}") from err
    except OSError as err:
        raise MediaReadError(f"cannot open video file {path}: {err.strerror}") from err
    with file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise MediaReadError(f"{path} is not a regular file")
        head = file.read(64)
        file.seek(0)
        try:
            container = av.open(file, "r", container_options=_CONTAINER_OPTIONS, io_open=_refuse_nested(path),
                                buffer_size=_BUFFER_BYTES, **METADATA_TEXT)
        except av.error.FFmpegError as err:
            kind = _describe(head, path.name)
            if kind is not None:
                raise UnsafeVideoError(f"{path.name} is {kind}. Only self-contained video files ({READABLE}) are "
                                       "read") from err
            if isinstance(err, av.error.ArgumentError):  # EINVAL: the probed demuxer is not on the whitelist
                raise UnsafeVideoError(f"{path.name} is not a video container that keeps everything in one file; "
                                       f"only {READABLE} are read") from err
            raise MediaReadError(f"cannot read video file {path}: not a video or corrupt ({err})") from err
        except OSError as err:  # raised by the Python file on a seek ffmpeg's probe makes into a truncated file
            raise MediaReadError(f"cannot read video file {path}: not a video or corrupt ({err})") from err
        with container:
            aliases = set(container.format.name.split(","))
            if not aliases & set(SINGLE_FILE_DEMUXERS):
                raise UnsafeVideoError(f"{path.name} was read as {container.format.name!r}; only self-contained "
                                       f"video files ({READABLE}) are read")
            yield container
