"""AsyncRawFile: binary, buffering=0, one system call per method (io.FileIO)."""

from __future__ import annotations

from operator import index as _index

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Iterable
    import os as _os

from .. import _engine
from .._loop import run as _run
from .base import (
    DEFAULT_BUFFER_SIZE, _FileBase, _bytes_view, _e_pread, _e_read, _lseek, _readlines, _size_arg)


class AsyncRawFile(_FileBase):
    """Unbuffered binary file (``buffering=0``), like io.FileIO: each read or
    write is one engine request and may transfer less than asked."""

    def __init__(self, fd: int, name: Any, mode: str, closefd: bool, readable: bool,
                 writable: bool, append: bool, st: _os.stat_result, pos: int | None) -> None:
        self._init(fd, name, mode, closefd, readable, writable, append, st, pos)

    async def read(self, size: Any = -1) -> bytes:
        n = _size_arg(size)
        self._check_read()
        if n < 0:
            return await self.readall()
        if self._busy:
            await self._wait_idle("read of closed file")
        self._busy = True
        try:
            return await self._raw_read(n) if n else b""
        finally:
            self._release()

    read1 = read

    async def readall(self) -> bytes:
        self._check_read()
        return await self._locked("read of closed file", self._readall_u)

    async def _readall_u(self) -> bytes:
        parts: list = []
        start = _lseek(self._fd, 0, 1) if self._seekable else None
        try:
            await self._raw_readall(parts)
        except BaseException:
            if start is not None:
                _lseek(self._fd, start, 0)
            raise
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def readinto(self, buffer: Any) -> int:
        self._check_read()
        m = _bytes_view(buffer, "read-write bytes-like object")
        if self._busy:
            await self._wait_idle("read of closed file")
        self._busy = True
        try:
            return await self._raw_readinto(m) if len(m) else 0
        finally:
            self._release()

    readinto1 = readinto

    async def readline(self, size: Any = -1) -> bytes:
        limit = _size_arg(size)
        self._check_read("readline")
        return await self._locked("readline of closed file", self._readline_u, limit)

    async def _readline_u(self, limit: int) -> bytes:
        fd = self._fd
        parts: list = []
        total = 0
        if not self._seekable:       # one byte at a time, as io.FileIO does
            while limit < 0 or total < limit:
                b = await _run(_e_read, fd, 1)
                if not b:
                    break
                parts.append(b)
                total += 1
                if b == b"\n":
                    break
            return b"".join(parts)
        # Seekable: read ahead positionally and move the offset past the line only.
        start = pos = _lseek(fd, 0, 1)
        try:
            while limit < 0 or total < limit:
                want = DEFAULT_BUFFER_SIZE if limit < 0 else min(DEFAULT_BUFFER_SIZE, limit - total)
                data = await _run(_e_pread, fd, want, pos)
                if not data:
                    break
                i = data.find(b"\n")
                if i >= 0:
                    data = data[:i + 1]
                parts.append(data)
                total += len(data)
                pos += len(data)
                if i >= 0:
                    break
        except BaseException:
            _lseek(fd, start, 0)
            raise
        _lseek(fd, pos, 0)
        return b"".join(parts)

    async def readlines(self, hint: Any = -1) -> list:
        return await _readlines(self, _size_arg(hint))

    def __aiter__(self):
        return self

    async def __anext__(self) -> bytes:
        line = await self.readline()
        if not line:
            raise StopAsyncIteration
        return line

    async def write(self, b: Any) -> int:
        self._check_write()
        m = _bytes_view(b)
        if self._busy:
            await self._wait_idle("write to closed file")
        self._busy = True
        try:
            return await self._raw_write(m) if len(m) else 0
        finally:
            self._release()

    async def writelines(self, lines: Iterable[Any]) -> None:
        if self._closed:
            raise ValueError("I/O operation on closed file")
        for line in lines:
            m = _bytes_view(line)
            while m:
                m = m[await self.write(m):]

    async def seek(self, offset: Any, whence: int = 0) -> int:
        offset = _index(offset)
        if self._closed:
            raise ValueError("I/O operation on closed file")
        if self._busy:
            await self._wait_idle()
        return _lseek(self._fd, offset, whence)

    async def tell(self) -> int:
        if self._closed:
            raise ValueError("I/O operation on closed file")
        if self._busy:
            await self._wait_idle()
        return _lseek(self._fd, 0, 1)

    async def truncate(self, size: Any = None) -> int:
        self._check_write("truncate")
        if self._busy:
            await self._wait_idle()
        size = _lseek(self._fd, 0, 1) if size is None else _index(size)
        await _run(_engine.ftruncate, self._fd, size)
        return size

    async def flush(self) -> None:
        if self._closed:
            raise ValueError("I/O operation on closed file")


