"""The binary file classes of linuxaio.aiofiles (aiofiles.threadpool.binary's
names): linuxaio's AsyncRawFile and AsyncBufferedFile with aiofiles' surface.

What aiofiles' objects do differently from linuxaio's own, and these do too:
``seekable()`` and ``writable()`` are coroutines (aiofiles runs them in its
executor), ``readable()`` is not; ``detach()`` is synchronous and gives the
synchronous raw file (an io.FileIO on the fd, at the file's position), and
``raw`` is a synchronous io.FileIO on the fd (not closing it)."""
from __future__ import annotations

import io
import os as _os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from ..._file.buffered import AsyncBufferedFile
from ..._file.raw import AsyncRawFile

__all__ = ["AsyncBufferedIOBase", "AsyncBufferedReader", "AsyncFileIO",
           "AsyncIndirectBufferedIOBase", "AsyncIndirectBufferedReader", "AsyncIndirectFileIO"]


def _hand_over(f: Any) -> io.FileIO:
    """A synchronous detach()'s part of binary file f: its buffer written
    out in this thread (aiofiles' does the same, on the loop's thread), then
    its fd as an io.FileIO at f's position, f marked detached."""
    if f._busy:
        raise BlockingIOError(11, "detach() while an operation is in progress")
    wb = f._wbuf
    while wb:
        del wb[:_os.write(f._fd, wb)]
    fd, closefd, name, mode = f._fd, f._closefd, f.name, f._mode
    f._detach_prepare()
    raw = io.FileIO(fd, mode.replace("x", "w") if "x" in mode else mode, closefd=closefd)
    raw.name = name
    return raw


class _AiofilesSurface:
    """aiofiles' coroutine versions of the io probes."""

    async def seekable(self) -> bool:
        return super().seekable()       # type: ignore[misc]

    async def writable(self) -> bool:
        return super().writable()       # type: ignore[misc]


class AsyncBufferedIOBase(_AiofilesSurface, AsyncBufferedFile):
    """A buffered binary file (aiofiles' wrapper of io.BufferedWriter, and the
    base of its BufferedReader/BufferedRandom one)."""

    @property
    def raw(self) -> io.FileIO:
        """The synchronous raw file on the fd (it does not close the fd)."""
        if self._closed:
            raise ValueError("raw stream has been detached" if self._detached
                             else "I/O operation on closed file")
        raw = self.__dict__.get("_sync_raw")
        if raw is None or raw.closed or raw.fileno() != self._fd:
            raw = io.FileIO(self._fd, self._mode.replace("x", "w") if "x" in self._mode
                            else self._mode, closefd=False)
            raw.name = self.name
            self.__dict__["_sync_raw"] = raw
        return raw

    def detach(self) -> io.FileIO:  # type: ignore[override]
        """Write out the buffer (in this thread, as aiofiles does) and hand the
        fd over as a synchronous io.FileIO at this file's position.  This file
        is unusable afterwards (ValueError; closing it too)."""
        if self._closed:
            raise ValueError("raw stream has been detached" if self._detached
                             else "I/O operation on closed file")
        return _hand_over(self)


class AsyncBufferedReader(AsyncBufferedIOBase):
    """A buffered binary file opened for reading (io.BufferedReader and
    BufferedRandom's wrapper in aiofiles)."""


class AsyncFileIO(_AiofilesSurface, AsyncRawFile):
    """An unbuffered binary file (``buffering=0``; io.FileIO's wrapper)."""


# The indirect classes of aiofiles (stdin_bytes...) are in __init__.py: the
# same names, over whatever object sys.stdin.buffer is at each call.
from . import _indirect as _ind  # noqa: E402
AsyncIndirectBufferedIOBase = _ind.AsyncIndirectBufferedIOBase
AsyncIndirectBufferedReader = _ind.AsyncIndirectBufferedIOBase
AsyncIndirectFileIO = _ind.AsyncIndirectBufferedIOBase
