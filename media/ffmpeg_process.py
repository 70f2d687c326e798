"""The one way the pack runs ffmpeg: the binary imageio-ffmpeg ships, raw frames streamed to its stdin.

Frames arrive as chunks from a generator, so memory holds one chunk however long the video is. When the caller
also reads ffmpeg's stdout (frames coming back, as in interpolation), a thread writes stdin meanwhile: either pipe
alone would fill and block both processes. Whatever goes wrong on our side (a chunk that fails its check, an
interrupt raised by the chunk generator, an error while reading) kills ffmpeg at once and is raised in the
caller's thread; what goes wrong in ffmpeg comes back as its exit status and its own words, for the caller to put
in its error.
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import IO

import imageio_ffmpeg
import numpy as np

_MESSAGE_CHARS = 2000


@dataclass(frozen=True)
class Finished:
    code: int
    """ffmpeg's exit status."""
    stderr: str
    """What ffmpeg said (its log level is 'error'), trimmed."""

    @property
    def message(self) -> str:
        return self.stderr or f"exit status {self.code}"


def run(args: list[str], chunks: Iterable[np.ndarray], *, read_output: Callable[[IO[bytes]], None] | None = None,
        env: Mapping[str, str] | None = None) -> Finished:
    """Run `ffmpeg <args>` with each chunk's bytes written to its stdin, then stdin closed.

    `read_output`, when given, reads ffmpeg's stdout in this thread while another thread feeds stdin.
    """
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", *args]
    stdout = subprocess.PIPE if read_output is not None else subprocess.DEVNULL
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=stdout, stderr=errors, env=env)
        feeder = _Feeder(proc, chunks)
        try:
            if read_output is None:
                feeder.run()
            else:
                feeder.start()
                read_output(proc.stdout)
        except BaseException:
            proc.kill()
            raise
        finally:
            if proc.stdout is not None:
                proc.stdout.close()
            code = proc.wait()
            if feeder.is_alive():
                feeder.join()
        feeder.raise_error()
        errors.seek(0)
        return Finished(code, errors.read().decode("utf-8", "replace").strip()[:_MESSAGE_CHARS])


class _Feeder(threading.Thread):
    """Writes the chunks to ffmpeg's stdin; run inline or as a thread. An error of ours kills ffmpeg (so a reader
    waiting on its stdout wakes up) and is kept for raise_error in the caller's thread."""

    def __init__(self, proc: subprocess.Popen, chunks: Iterable[np.ndarray]):
        super().__init__(daemon=True)
        self._proc, self._chunks, self._error = proc, chunks, None

    def run(self) -> None:
        try:
            for chunk in self._chunks:
                self._proc.stdin.write(memoryview(np.ascontiguousarray(chunk)).cast("B"))
        except BrokenPipeError:
            pass  # ffmpeg stopped reading: its exit status and message say why
        except BaseException as err:  # noqa: BLE001 - surfaced in the caller's thread by raise_error
            self._error = err
            self._proc.kill()
        finally:
            try:
                self._proc.stdin.close()
            except BrokenPipeError:
                pass

    def raise_error(self) -> None:
        if self._error is not None:
            raise self._error
