"""Awaitable twins of ``os``: same names, arguments, results and exceptions.

Each call is one engine request, awaited under asyncio, uvloop or trio.
A cancelled call cancels its request (see ``linuxaio._loop``): a request not
yet started never runs; an ``open`` that completed anyway has its fd closed.
A cancelled ``write``/``pwrite``/``unlink`` may have happened already: the
cancellation only stops the caller from waiting for it.
"""
from __future__ import annotations

import os as _os
from typing import Any, Iterable, Sequence

from . import _engine
from ._loop import run as _run

__all__ = [
    "open", "close", "read", "write", "pread", "pwrite", "readv", "preadv", "pwritev",
    "readinto", "preadinto", "stat", "lstat", "fstat", "unlink", "remove",
    "pread_many", "stat_many",
]

_NOFOLLOW = _engine.AT_SYMLINK_NOFOLLOW


async def open(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
    return await _run(_engine.open, path, flags, mode & 0o7777, dir_fd)


async def close(fd: int) -> None:
    await _run(_engine.aio_close, fd)


async def read(fd: int, n: int) -> bytes:
    return await _run(_engine.read, fd, n)


async def pread(fd: int, n: int, offset: int) -> bytes:
    return await _run(_engine.pread, fd, n, offset)


async def readinto(fd: int, buffer: Any) -> int:
    """Read into any writable buffer at the file position; no copy."""
    return await _run(_engine.readinto, fd, buffer)


async def preadinto(fd: int, buffer: Any, offset: int) -> int:
    """Read into any writable buffer at offset; no copy."""
    return await _run(_engine.preadinto, fd, buffer, offset)


async def readv(fd: int, buffers: Sequence[Any]) -> int:
    return await _run(_engine.preadv, fd, buffers, None, 0)


async def preadv(fd: int, buffers: Sequence[Any], offset: int, flags: int = 0) -> int:
    return await _run(_engine.preadv, fd, buffers, offset, flags)


async def write(fd: int, data: Any) -> int:
    return await _run(_engine.write, fd, data)


async def pwrite(fd: int, data: Any, offset: int) -> int:
    return await _run(_engine.pwrite, fd, data, offset)


async def pwritev(fd: int, buffers: Sequence[Any], offset: int, flags: int = 0) -> int:
    return await _run(_engine.pwritev, fd, buffers, offset, flags)


async def stat(path: Any, *, dir_fd: int | None = None, follow_symlinks: bool = True) -> _os.stat_result:
    if dir_fd is not None and not isinstance(path, (str, bytes, _os.PathLike)):
        raise ValueError("stat: can't specify dir_fd without matching path")
    return await _run(_engine.stat, path, dir_fd, 0 if follow_symlinks else _NOFOLLOW)


async def lstat(path: Any, *, dir_fd: int | None = None) -> _os.stat_result:
    return await stat(path, dir_fd=dir_fd, follow_symlinks=False)


async def fstat(fd: int) -> _os.stat_result:
    if not isinstance(fd, int):
        raise TypeError(f"fstat: fd must be an int, not {type(fd).__name__}")
    return await _run(_engine.stat, fd, None, 0)


async def unlink(path: Any, *, dir_fd: int | None = None) -> None:
    await _run(_engine.unlink, path, dir_fd)


remove = unlink


# ---- batches: many requests submitted in one call and awaited as one ----

async def pread_many(fd: int, requests: Iterable[tuple[int, int]]) -> list[bytes]:
    """``[await pread(fd, n, offset) for n, offset in requests]``, all in flight at once.

    One engine call submits them all; the result list is in request order.
    The first failure is raised once every read has finished.
    """
    results = await _run(_engine.submit_many, "pread", [(fd, n, off) for n, off in requests])
    return _raise_first(results)


async def stat_many(paths: Iterable[Any], *, return_exceptions: bool = False) -> list[Any]:
    """``os.stat`` of every path, submitted in one call; results in order.

    With return_exceptions, a failed stat leaves its OSError in the list
    (as asyncio.gather does); otherwise the first one is raised.
    """
    results = await _run(_engine.submit_many, "stat", [(p, None, 0) for p in paths])
    return results if return_exceptions else _raise_first(results)


def _raise_first(results: list[Any]) -> list[Any]:
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return results
