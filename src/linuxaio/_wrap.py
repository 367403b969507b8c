"""linuxaio.wrap_file: adopt an open synchronous file object as an async file
(anyio.wrap_file's job).

A builtin file (io.FileIO, a Buffered* over one, a TextIOWrapper: what open()
and socket.makefile() give) has an fd: its transfers run on the engine, through
a linuxaio file opened on that fd at the first await (``closefd=False``: the
synchronous object keeps owning the fd).  Anything else (io.BytesIO,
io.StringIO, a file-like object of unknown make) has no fd, and its methods run
in a worker thread of the running loop, as anyio's do.

Every write (write, writelines) is written through to the fd before it
returns: the caller may go on with the synchronous object (anyio's tests close
it with ``with`` and read the file), so nothing stays in linuxaio's buffer.
Reads may read ahead: once reading through the async object, keep to it until
``aclose()`` (which closes the synchronous object too).  A text file is adopted
with its encoding, errors and line buffering, and universal newlines
(``newline=None``): TextIOWrapper does not tell its newline argument.
Attributes that are not I/O (``name``, ``mode``, ``closed``, ``fileno()``...)
are the synchronous object's.
"""
from __future__ import annotations

import io
import os as _os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from . import _loop
from ._file import _CLASSES, _open, _open_args
from ._file.base import AsyncFile, set_limiter
from ._limit import check as _check_limiter

__all__ = ["wrap_file", "AsyncWrappedFile"]

_FD_TYPES = (io.FileIO, io.BufferedReader, io.BufferedWriter, io.BufferedRandom,
             io.TextIOWrapper)


def _fd_of(fp: Any) -> int | None:
    """The fd a builtin file object reads and writes, or None."""
    if not isinstance(fp, _FD_TYPES):
        return None
    try:
        fd = fp.fileno()
    except (OSError, ValueError, AttributeError):
        return None
    return fd if isinstance(fd, int) and fd >= 0 else None


class AsyncWrappedFile(AsyncFile):
    """The async file linuxaio.wrap_file gives (see the module's docstring)."""

    def __init__(self, fp: Any) -> None:
        self._adopted = fp
        self._inner: Any = None       # the linuxaio file on fp's fd, once made
        self._fd = _fd_of(fp)
        if self._fd is not None:
            mode = getattr(fp, "mode", None)
            if isinstance(fp, io.TextIOWrapper):
                text = fp
                mode = mode if isinstance(mode, str) else "r"
                if "b" in mode:
                    self._fd = None
            else:
                text = None
                mode = mode if isinstance(mode, str) else "rb"
                if "b" not in mode:
                    mode += "b"
            try:
                if self._fd is not None:
                    self._args = _open_args(
                        self._fd, mode, -1,
                        text.encoding if text else None, text.errors if text else None,
                        None, False, None, None, _CLASSES)
            except (ValueError, TypeError, LookupError):
                self._fd = None

    def __getattr__(self, name: str) -> Any:
        # the synchronous object's attributes (name, mode, closed, fileno...)
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._adopted, name)

    def __repr__(self) -> str:
        return f"<linuxaio.AsyncWrappedFile of {self._adopted!r}>"

    async def _file(self) -> Any:
        """The linuxaio file on the fd, made at the first use: the synchronous
        object's buffer is written out first and its position handed over."""
        f = self._inner
        if f is None:
            fp = self._adopted
            fd = self._fd
            # what fp buffered is its, not the kernel's: settle it first
            pending = getattr(fp, "buffer", fp)
            await _loop.to_thread(fp.flush)
            if fp.seekable():
                pos = pending.tell()
                _os.lseek(fd, pos, 0)
            f = self._inner = await _open(*self._args)
        return f

    async def _call(self, name: str, *args: Any) -> Any:
        if self._fd is None:
            return await _loop.to_thread(getattr(self._adopted, name), *args)
        f = await self._file()
        return await getattr(f, name)(*args)

    async def read(self, size: int = -1) -> Any:
        return await self._call("read", size)

    async def read1(self, size: int = -1) -> bytes:
        return await self._call("read1", size)

    async def readline(self, size: int = -1) -> Any:
        return await self._call("readline", size)

    async def readlines(self, hint: int = -1) -> list:
        return await self._call("readlines", hint)

    async def readinto(self, b: Any) -> int:
        return await self._call("readinto", b)

    async def readinto1(self, b: Any) -> int:
        return await self._call("readinto1", b)

    async def readall(self) -> bytes:
        return await self._call("readall")

    async def peek(self, size: int = 0) -> bytes:
        return await self._call("peek", size)

    async def write(self, b: Any) -> int:
        if self._fd is None:
            return await _loop.to_thread(self._adopted.write, b)
        f = await self._file()
        n = await f.write(b)
        await f.flush()
        return n

    async def writelines(self, lines: Any) -> None:
        if self._fd is None:
            return await _loop.to_thread(self._adopted.writelines, lines)
        f = await self._file()
        await f.writelines(lines)
        await f.flush()

    async def truncate(self, size: int | None = None) -> int:
        return await self._call("truncate", size)

    async def seek(self, offset: int, whence: int | None = 0) -> int:
        return await self._call("seek", offset, 0 if whence is None else whence)

    async def tell(self) -> int:
        return await self._call("tell")

    async def flush(self) -> None:
        return await self._call("flush")

    async def isatty(self) -> bool:
        return await self._call("isatty")

    async def aclose(self) -> None:
        """Close: linuxaio's file on the fd (its writes are out already), then
        the synchronous object, in a worker (its close may flush)."""
        f, self._inner = self._inner, None
        fp = self._adopted
        try:
            if f is not None:
                await f.aclose()       # closefd=False: the fd stays fp's
        finally:
            if not fp.closed:
                await _loop.to_thread(fp.close)

    close = aclose


def wrap_file(file: Any, *, limiter: Any = None) -> AsyncWrappedFile:
    """An async file over an open synchronous file object (anyio.wrap_file):
    its I/O on the engine where it has an fd, in a worker thread otherwise.
    ``limiter`` bounds how many of its requests run at once."""
    limiter = _check_limiter(limiter)
    return set_limiter(AsyncWrappedFile(file), limiter)
