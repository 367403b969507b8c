"""AsyncBufferedFile: binary, buffered (io.BufferedReader, BufferedWriter and
BufferedRandom in one class)."""

from __future__ import annotations

import os as _os
from operator import index as _index

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Iterable

from .. import _engine
from .._loop import run as _run
from .base import (
    UnsupportedOperation, _FULL_CHUNK_DIRECT, _FileBase, _SEEK_FLAGS, _bytes_view, _lseek, _size_arg)


class AsyncBufferedFile(_FileBase):
    """Buffered binary file: io.BufferedReader, BufferedWriter and
    BufferedRandom in one class (which of them depends on the mode)."""

    def __init__(self, fd: int, name: Any, mode: str, closefd: bool, readable: bool,
                 writable: bool, append: bool, st: _os.stat_result, pos: int | None,
                 buffer_size: int, chunk: int) -> None:
        self._init(fd, name, mode, closefd, readable, writable, append, st, pos)
        self.buffer_size = buffer_size   # what the builtin would use (read1's default)
        self._chunk = chunk              # what a refill reads, and the write buffer's capacity
        self._rbuf = b""                 # read buffer; its unread part is _rbuf[_rpos:]
        self._rpos = 0
        self._wbuf = bytearray()         # pending writes: they go at the kernel's offset
        # Invariant: no unread bytes while writes are pending.  The kernel
        # offset sits at the end of the read buffer, or where the pending
        # writes go.

    # ---- the raw file underneath ----

    def _raw_twin(self, closefd: bool) -> Any:
        from .raw import AsyncRawFile
        return AsyncRawFile(self._fd, self.name, self._mode, closefd, self._readable,
                            self._writable, self._append, self._st,
                            0 if self._seekable else None)

    @property
    def raw(self) -> Any:
        """The unbuffered file underneath (io.BufferedReader.raw): an
        AsyncRawFile on the same fd that does not close it.  Its transfers go
        at the kernel's offset, which runs ahead of this file's position by
        the unread bytes in the buffer (as the builtin's raw does)."""
        if self._closed:
            raise ValueError("raw stream has been detached" if self._detached
                             else "I/O operation on closed file")
        raw = self.__dict__.get("_raw")
        if raw is None or raw._fd != self._fd:
            raw = self._raw_twin(False)
            raw._limiter = None
            self.__dict__["_raw"] = raw
        return raw

    def _detach_prepare(self) -> None:
        """The file position made the kernel's, and this file marked detached:
        what detach() does once the pending writes are out."""
        self._rewind()
        self._closed = True
        self._detached = True
        self._fd = -1

    async def detach(self) -> Any:
        """Write out the buffer and hand over the fd: an AsyncRawFile at this
        file's position that closes the fd if this file would have.  This file
        is unusable afterwards (ValueError; closing it too, as io's)."""
        if self._closed:
            raise ValueError("raw stream has been detached" if self._detached
                             else "I/O operation on closed file")
        await self._locked("I/O operation on closed file", self._flush_u)
        raw = self._raw_twin(self._closefd)
        self._detach_prepare()
        return raw

    def _drop_buffers(self) -> None:
        self._rbuf = b""
        self._rpos = 0

    def _unread(self, data: bytes) -> None:
        """Put bytes taken from the buffer (or read past it) back in front of it."""
        if data:
            self._rbuf = data + self._rbuf[self._rpos:]
            self._rpos = 0

    def _rewind(self) -> None:
        """Drop the unread bytes and move the kernel offset back to the logical
        position (before writing, seeking or truncating)."""
        unread = len(self._rbuf) - self._rpos
        if unread and self._seekable:
            _lseek(self._fd, -unread, 1)
        self._rbuf = b""
        self._rpos = 0

    # ---- reading ----

    async def read(self, size: Any = -1) -> bytes:
        n = _size_arg(size)
        if self._closed:
            raise ValueError("read of closed file")
        if not self._readable:
            raise UnsupportedOperation("read")
        if not self._busy and n >= 0:
            p = self._rpos
            if len(self._rbuf) - p >= n:
                self._rpos = p + n
                return self._rbuf[p:p + n]
        if self._busy:
            await self._wait_idle("read of closed file")
        self._busy = True
        try:
            # (_locked by hand: read() of a whole file is the common case,
            # and this saves it two coroutines)
            return await (self._read_u(n) if n >= 0 else self._readall_u())
        finally:
            self._release()

    async def readall(self) -> bytes:
        return await self.read(-1)

    async def _read_u(self, n: int) -> bytes:
        if self._wbuf:
            await self._flush_u()
        if n < 0:
            return await self._readall_u()
        rb, p = self._rbuf, self._rpos
        avail = len(rb) - p
        if avail >= n:
            self._rpos = p + n
            return rb[p:p + n]
        parts = [rb[p:]] if avail else []
        self._rbuf, self._rpos = b"", 0
        need = n - avail
        chunk = self._chunk
        try:
            while need > 0:
                data = await self._raw_read(need if need >= chunk else chunk)
                if not data:
                    break
                if len(data) > need:
                    parts.append(data[:need])
                    self._rbuf, self._rpos = data, need
                    break
                parts.append(data)
                need -= len(data)
        except BaseException:
            self._unread(b"".join(parts))
            raise
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def _readall_u(self) -> bytes:
        if self._wbuf:
            await self._flush_u()
        rb, p = self._rbuf, self._rpos
        parts = [rb[p:]] if len(rb) > p else []
        self._rbuf, self._rpos = b"", 0
        try:
            await self._raw_readall(parts)
        except BaseException:
            self._unread(b"".join(parts))
            raise
        if len(parts) == 1:
            return parts[0]
        return b"".join(parts)

    async def read1(self, size: Any = -1) -> bytes:
        n = _size_arg(size)
        self._check_read()
        if n < 0:
            n = self.buffer_size
        return await self._locked("read of closed file", self._read1_u, n)

    async def _read1_u(self, n: int) -> bytes:
        """At most one raw read: what is buffered, else one refill."""
        if n == 0:
            return b""
        rb, p = self._rbuf, self._rpos
        avail = len(rb) - p
        if avail:
            if avail <= n:
                self._rbuf, self._rpos = b"", 0
                return rb[p:] if p else rb
            self._rpos = p + n
            return rb[p:p + n]
        if self._wbuf:
            await self._flush_u()
        if n >= self._chunk:
            return await self._raw_read(n)
        data = await self._raw_read(self._chunk)
        if len(data) > n:
            self._rbuf, self._rpos = data, n
            return data[:n]
        return data

    async def peek(self, size: int = 0) -> bytes:
        """The buffered bytes (at least one unless at the end), not consumed."""
        self._check_read("peek")
        return await self._locked("peek of closed file", self._peek_u)

    async def _peek_u(self) -> bytes:
        if len(self._rbuf) == self._rpos:
            if self._wbuf:
                await self._flush_u()
            self._rbuf, self._rpos = await self._raw_read(self._chunk), 0
        return self._rbuf[self._rpos:]

    async def readinto(self, buffer: Any) -> int:
        self._check_read()
        m = _bytes_view(buffer, "read-write bytes-like object")
        return await self._locked("read of closed file", self._readinto_u, m, False)

    async def readinto1(self, buffer: Any) -> int:
        self._check_read()
        m = _bytes_view(buffer, "read-write bytes-like object")
        return await self._locked("read of closed file", self._readinto_u, m, True)

    async def _readinto_u(self, m: memoryview, once: bool) -> int:
        n = len(m)
        rb, p = self._rbuf, self._rpos
        avail = len(rb) - p
        if avail >= n:
            m[:] = rb[p:p + n]
            self._rpos = p + n
            return n
        if avail:
            m[:avail] = rb[p:]
            self._rbuf, self._rpos = b"", 0
            if once:
                return avail
        if self._wbuf:
            await self._flush_u()
        got = avail
        try:
            while got < n:
                if n - got >= self._chunk:     # big: straight into the caller's buffer
                    k = await self._raw_readinto(m[got:])
                    if not k:
                        break
                    got += k
                else:
                    data = await self._raw_read(self._chunk)
                    if not data:
                        break
                    k = min(len(data), n - got)
                    m[got:got + k] = data[:k]
                    got += k
                    if k < len(data):
                        self._rbuf, self._rpos = data, k
                if once:
                    break
        except BaseException:
            self._unread(bytes(m[:got]))
            raise
        return got

    async def readline(self, size: Any = -1) -> bytes:
        limit = _size_arg(size)
        if not self._busy and limit < 0:
            rb, p = self._rbuf, self._rpos
            i = rb.find(b"\n", p)
            if i >= 0:
                i += 1
                self._rpos = i
                return rb[p:i]
        self._check_read("readline")
        return await self._locked("readline of closed file", self._readline_u, limit)

    async def _readline_u(self, limit: int) -> bytes:
        if self._wbuf:
            await self._flush_u()
        parts: list = []
        total = 0
        try:
            while True:
                rb, p = self._rbuf, self._rpos
                i = rb.find(b"\n", p)
                end = len(rb) if i < 0 else i + 1
                if limit >= 0 and total + end - p >= limit:
                    end = p + limit - total
                    i = 0
                if i >= 0:
                    self._rpos = end
                    parts.append(rb[p:end])
                    break
                if len(rb) > p:
                    parts.append(rb[p:] if p else rb)
                    total += len(rb) - p
                self._rbuf, self._rpos = b"", 0
                data = await self._raw_read(self._chunk)
                if not data:
                    break
                self._rbuf = data
        except BaseException:
            self._unread(b"".join(parts))
            raise
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def readlines(self, hint: Any = -1) -> list:
        hint = _size_arg(hint)
        self._check_read("readline")
        return await self._locked("readline of closed file", self._readlines_u, hint)

    async def _readlines_u(self, hint: int) -> list:
        lines: list = []
        try:
            total = 0
            while True:
                line = await self._readline_u(-1)
                if not line:
                    break
                lines.append(line)
                total += len(line)
                if 0 < hint < total:
                    break
        except BaseException:
            self._unread(b"".join(lines))
            raise
        return lines

    def __aiter__(self):
        return self

    async def __anext__(self) -> bytes:
        if not self._busy:
            rb, p = self._rbuf, self._rpos
            i = rb.find(b"\n", p)
            if i >= 0:
                i += 1
                self._rpos = i
                return rb[p:i]
        line = await self.readline()
        if not line:
            raise StopAsyncIteration
        return line

    # ---- writing ----

    async def write(self, b: Any) -> int:
        if self._closed:
            raise ValueError("write to closed file")
        if not self._writable:
            raise UnsupportedOperation("write")
        m = _bytes_view(b)
        n = len(m)
        if not self._busy and self._try_buffer(m):
            return n
        await self._locked("write to closed file", self._write_u, m)
        return n

    def _try_buffer(self, m: Any) -> bool:
        """Take the bytes into the write buffer if they fit (no I/O)."""
        wb = self._wbuf
        if len(wb) + len(m) > self._chunk or (_FULL_CHUNK_DIRECT and len(m) >= self._chunk):
            return False
        if self._rpos < len(self._rbuf):
            self._rewind()
        wb += m
        return True

    async def _write_u(self, m: Any) -> None:
        if self._rpos < len(self._rbuf):
            self._rewind()
        wb = self._wbuf
        if len(wb) + len(m) <= self._chunk and not (_FULL_CHUNK_DIRECT and len(m) >= self._chunk):
            wb += m
            return
        if wb:
            await self._flush_u()
        if len(m) >= self._chunk:
            await self._raw_write_all(m)
        else:
            wb += m

    async def writelines(self, lines: Iterable[Any]) -> None:
        if self._closed:
            raise ValueError("write to closed file")
        for line in lines:
            await self.write(line)

    async def flush(self) -> None:
        if self._closed:
            raise ValueError("flush of closed file")
        if not self._wbuf:
            if not self._busy:
                return
        await self._locked("flush of closed file", self._flush_u)

    async def _flush_u(self) -> None:
        wb = self._wbuf
        while wb:
            # A bytes copy: the engine keeps the buffer it writes from until
            # the request ends, and a bytearray it holds cannot grow.
            n = await self._raw_write(bytes(wb))
            if n <= 0:
                raise OSError(5, "write returned 0 bytes")
            del wb[:n]

    def _flush_sync(self, fd: int) -> None:
        wb = self._wbuf
        try:
            while wb and fd >= 0:
                del wb[:_os.write(fd, wb)]
        except OSError:
            pass

    # ---- position ----

    def _tell_u(self) -> int:
        pos = _lseek(self._fd, 0, 1)
        return pos - (len(self._rbuf) - self._rpos) + len(self._wbuf)

    async def tell(self) -> int:
        if self._closed:
            raise ValueError("I/O operation on closed file")
        if self._busy:
            await self._wait_idle()
        return self._tell_u()

    async def seek(self, offset: Any, whence: int = 0) -> int:
        offset = _index(offset)
        whence = _index(whence)
        if whence not in _SEEK_FLAGS:
            raise ValueError(f"whence value {whence} unsupported")
        if self._closed:
            raise ValueError("seek of closed file")
        if not self._seekable:
            raise UnsupportedOperation("File or stream is not seekable.")
        if self._busy:
            await self._wait_idle("seek of closed file")
        if not self._wbuf:
            return self._seek_u(offset, whence)
        self._busy = True
        try:
            await self._flush_u()
            return self._seek_u(offset, whence)
        finally:
            self._release()

    def _seek_u(self, offset: int, whence: int) -> int:
        if whence < 2 and self._rbuf:
            # Within the read buffer: move in it, no system call but the tell.
            end = _lseek(self._fd, 0, 1)
            start = end - len(self._rbuf)
            target = offset if whence == 0 else end - len(self._rbuf) + self._rpos + offset
            if start <= target <= end:
                self._rpos = target - start
                return target
            if whence == 1:
                offset, whence = target, 0
        pos = _lseek(self._fd, offset, whence)   # if this fails, nothing has changed
        self._rbuf, self._rpos = b"", 0
        return pos

    async def truncate(self, pos: Any = None) -> int:
        if self._closed:
            raise ValueError("truncate of closed file")
        if not self._writable:
            raise UnsupportedOperation("truncate")
        if pos is not None:
            pos = _index(pos)
        return await self._locked("truncate of closed file", self._truncate_u, pos)

    async def _truncate_u(self, pos: int | None) -> int:
        await self._flush_u()
        self._rewind()
        if pos is None:
            pos = _lseek(self._fd, 0, 1)
        await _run(_engine.ftruncate, self._fd, pos)
        return pos


