"""linuxaio.aiofiles.threadpool: aiofiles.threadpool's names (``open``,
``wrap``, the stdio files).  Nothing here uses a thread pool but where no fd
exists: the name is aiofiles' module's."""
from __future__ import annotations

import io
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from ..._file import _open, _open_args
from ..._file.buffered import AsyncBufferedFile
from ..._wrap import AsyncWrappedFile
from ..base import AiofilesContextManager
from .binary import (
    AsyncBufferedIOBase,
    AsyncBufferedReader,
    AsyncFileIO,
    AsyncIndirectBufferedIOBase,
)
from .text import AsyncTextIndirectIOWrapper, AsyncTextIOWrapper

__all__ = (
    "open",
    "stdin",
    "stdout",
    "stderr",
    "stdin_bytes",
    "stdout_bytes",
    "stderr_bytes",
)

# the inner buffer of a text file is linuxaio's own class (the text class
# uses its synchronous probes); binary buffered files are aiofiles' classes.
_CLASSES = (AsyncFileIO, AsyncBufferedFile, AsyncTextIOWrapper,
            AsyncBufferedReader, AsyncBufferedIOBase)


def open(file: Any, mode: str = "r", buffering: int = -1, encoding: str | None = None,
         errors: str | None = None, newline: str | None = None, closefd: bool = True,
         opener: Any = None, *, loop: Any = None, executor: Any = None) -> AiofilesContextManager:
    """Open a file (aiofiles.open): ``f = await open(...)`` or ``async with
    open(...) as f``.  The builtin open's arguments, checked at once; the
    file is opened by one engine request when awaited.  ``loop`` and
    ``executor`` are accepted and ignored."""
    args = _open_args(file, mode, buffering, encoding, errors, newline, closefd, opener,
                      None, _CLASSES)
    return AiofilesContextManager(_open(*args))


_WRAPPABLE = (io.TextIOBase, io.BufferedIOBase, io.FileIO, io.RawIOBase)


def wrap(file: Any, *, loop: Any = None, executor: Any = None) -> AsyncWrappedFile:
    """An async file over an open synchronous file object (aiofiles'
    threadpool.wrap): linuxaio.wrap_file's adoption (the fd on the engine;
    no fd, a worker thread).  TypeError for anything that is not an io
    stream."""
    if not isinstance(file, _WRAPPABLE):
        raise TypeError(f"Unsupported io type: {file}.")
    return AsyncWrappedFile(file)


stdin = AsyncTextIndirectIOWrapper("sys.stdin", None, None, indirect=lambda: sys.stdin)
stdout = AsyncTextIndirectIOWrapper("sys.stdout", None, None, indirect=lambda: sys.stdout)
stderr = AsyncTextIndirectIOWrapper("sys.stderr", None, None, indirect=lambda: sys.stderr)
stdin_bytes = AsyncIndirectBufferedIOBase(
    "sys.stdin.buffer", None, None, indirect=lambda: sys.stdin.buffer)
stdout_bytes = AsyncIndirectBufferedIOBase(
    "sys.stdout.buffer", None, None, indirect=lambda: sys.stdout.buffer)
stderr_bytes = AsyncIndirectBufferedIOBase(
    "sys.stderr.buffer", None, None, indirect=lambda: sys.stderr.buffer)
