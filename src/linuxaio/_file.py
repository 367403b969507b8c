"""Async file objects: ``await linuxaio.open(...)`` or ``async with linuxaio.open(...) as f``.

``linuxaio.open`` takes the builtin ``open``'s parameters and gives back one of
three async file objects, as the builtin gives a FileIO, a Buffered* or a
TextIOWrapper:

- ``AsyncRawFile``      binary, ``buffering=0``: one system call per method;
- ``AsyncBufferedFile`` binary, buffered (the builtin's BufferedReader,
  BufferedWriter and BufferedRandom in one class);
- ``AsyncTextFile``     text: decoding, encoding and newline translation over
  an ``AsyncBufferedFile`` (its ``buffer``), like ``io.TextIOWrapper``.

Every method that may touch the file is a coroutine (``seek`` and ``tell``
too).  Reads and writes are engine requests (``linuxaio._engine``); buffering,
decoding and newline handling happen in Python in the caller's thread, so a
read or a line that is already in the buffer costs no engine request and no
suspension at all.

How the file position is kept.  The kernel's file offset is the position, as
with the builtin (so an fd shared with a child process behaves the same), but
the transfers at that position are positional: ``lseek`` (synchronous; it never
blocks) gives the offset, ``pread``/``pwrite`` runs on the engine, and the offset
is moved past what was transferred once the request has completed.  A
cancelled read therefore leaves no trace; a cancelled write leaves its data
in the buffer, and writing it again at the same offset is harmless.  Where the
file cannot seek (pipes, ttys) and in append mode (O_APPEND) plain
``read``/``write`` are used: a cancelled one may have consumed or written data.

Differences from the builtin, all deliberate:

- arguments are checked before anything is opened (the builtin opens the file
  first and then rejects, say, ``buffering=0`` for text or an unknown encoding);
- default buffering reads and writes READ_AHEAD (64 KiB) at a time, more than
  the builtin's ``st_blksize``; the visible buffer size (``read1()`` with no
  argument) stays the builtin's;
- text ``tell()`` works during ``async for`` (the builtin refuses with
  "telling position disabled by next() call");
- one file object may be used by several tasks: each operation waits for the
  one in progress (the builtin holds a lock the same way);
- ``pread``/``pwrite``/``preadinto`` take and give bytes in every mode, bypass the
  buffer (they neither flush nor see buffered data) and may run concurrently;
- ``aclose()`` of a file not opened for writing does not wait for close(2): the
  engine closes the fd in the background (it cannot report anything worth a
  wait).  A file opened for writing waits for it (NFS reports write errors there);
- a read that fails half-way (a decoding error, a cancellation) takes nothing:
  the position is where it was, and reading again meets the same error (the
  builtin has lost the chunk it failed to decode);
- a read right after a write sees the write: text ``read(n)``/``readline()``
  write out pending text first (as ``_pyio`` does; the C builtin reads first and
  writes its pending text after), binary ``read1()`` flushes first (the 3.11
  builtin's does not).

Text ``tell()`` cookies have the builtin's layout (position, decoder flags,
bytes to feed, characters to skip, need-EOF), so either's cookies seek
either.  Wherever the decoder holds nothing the cookie is the plain byte
position, and then it is the builtin's number.  Where the builtin's search
lands on a later point that means the same (past a ``\r`` held back in case a
``\n`` follows, in the universal-newline modes) ours names the earlier one:
both read on identically.  ``newlines`` after a ``tell()`` may differ: the
builtin's tell resets its decoder's record of the newlines seen when it works
in the file's first chunk.
"""
from __future__ import annotations

import asyncio
import codecs
import io
import locale
import os as _os
import stat as _stat
import sys
import warnings
from operator import index as _index
from typing import Any, Iterable

from . import _engine
from ._loop import run as _run

__all__ = ["open", "AsyncRawFile", "AsyncBufferedFile", "AsyncTextFile"]

UnsupportedOperation = io.UnsupportedOperation
DEFAULT_BUFFER_SIZE = io.DEFAULT_BUFFER_SIZE
READ_AHEAD = 64 * 1024       # default buffering reads and writes this much at a time
_TEXT_CHUNK = 8192           # bytes a text file decodes at a time (the builtin's _CHUNK_SIZE)
_READALL_CHUNK = 64 * 1024   # readall of a file of unknown size starts with this much
_READALL_MAX = 1 << 24

_get_running_loop = asyncio._get_running_loop
_lseek = _os.lseek
_e_close = _engine.aio_close
_e_open_stat, _e_fstat = _engine.open_stat, _engine.fstat
_e_read, _e_pread = _engine.read, _engine.pread
_e_readinto, _e_preadinto = _engine.readinto, _engine.preadinto
_e_write, _e_pwrite = _engine.write, _engine.pwrite

_SEEK_FLAGS = {0, 1, 2}
# The builtin's buffered writer from 3.13 on writes a piece of buffer_size
# bytes or more straight through instead of buffering one that fits exactly;
# where the position is visible (O_APPEND, tell) the difference shows.
_FULL_CHUNK_DIRECT = sys.version_info >= (3, 13)
for _name in ("SEEK_DATA", "SEEK_HOLE"):
    if hasattr(_os, _name):
        _SEEK_FLAGS.add(getattr(_os, _name))
del _name


def _size_arg(size: Any) -> int:
    """read(size)'s argument: None or an integer; -1 for None."""
    if size is None:
        return -1
    if size.__class__ is int:
        return size
    try:
        return _index(size)
    except TypeError:
        raise TypeError(f"argument should be integer or None, not '{type(size).__name__}'") from None


def _bytes_view(b: Any, what: str = "a bytes-like object") -> memoryview:
    try:
        m = memoryview(b)
    except TypeError:
        raise TypeError(f"{what} is required, not '{type(b).__name__}'") from None
    return m if m.format == "B" and m.ndim == 1 else m.cast("B")


async def _shielded(submit: Any, *args: Any) -> Any:
    """Await one engine request that a cancellation must not stop (a close):
    the caller still sees the cancellation, but the request runs to its end."""
    if _get_running_loop() is not None:
        return await asyncio.shield(_run(submit, *args))
    import trio
    with trio.CancelScope(shield=True):
        return await _run(submit, *args)


# ---------------------------------------------------------------- the fd

async def _readlines(f: Any, hint: int) -> list:
    """readlines() by readline(): lines until EOF or past hint characters."""
    lines: list = []
    total = 0
    while True:
        line = await f.readline()
        if not line:
            return lines
        lines.append(line)
        total += len(line)
        if 0 < hint < total:
            return lines


class _FileBase:
    """What the binary classes share: the fd, the mode, the per-file lock,
    closing, positional I/O and the raw transfers at the file position."""

    # class defaults, so that __del__ of a half-built object stays quiet
    _closed = True
    _fd = -1
    _busy = False
    _wbuf: Any = b""

    def _init(self, fd: int, name: Any, mode: str, closefd: bool, readable: bool,
              writable: bool, append: bool, st: _os.stat_result, pos: int | None) -> None:
        self._fd = fd
        self.name = name
        self._mode = mode
        self._closefd = closefd
        self._readable = readable
        self._writable = writable
        self._append = append
        self._seekable = pos is not None
        self._regular = _stat.S_ISREG(st.st_mode)
        self._size = st.st_size if self._regular else None   # for the first readall
        self._busy = False       # an operation that may suspend is in progress
        self._nwait = 0          # tasks waiting for it to end
        self._futs: list = []    # their asyncio futures
        self._lot: Any = None    # trio's parking lot
        self._npos = 0           # positional requests in flight
        self._close_when_idle = False
        self._closed = False

    # ---- the lock: an operation that may suspend holds _busy ----

    async def _wait_idle(self, msg: str = "I/O operation on closed file") -> None:
        while self._busy:
            await self._park()
        if self._closed:
            raise ValueError(msg)

    async def _park(self) -> None:
        self._nwait += 1
        try:
            loop = _get_running_loop()
            if loop is not None:
                fut = loop.create_future()
                self._futs.append(fut)
                await fut
            else:
                if self._lot is None:
                    import trio
                    self._lot = trio.lowlevel.ParkingLot()
                await self._lot.park()
        finally:
            self._nwait -= 1

    def _release(self) -> None:
        self._busy = False
        if self._nwait:
            self._wake()
        if self._close_when_idle and not self._npos:
            self._close_sync()

    def _wake(self) -> None:
        futs, self._futs = self._futs, []
        for fut in futs:
            if not fut.done():
                fut.set_result(None)
        if self._lot is not None:
            self._lot.unpark_all()

    # ---- state and checks ----

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def closefd(self) -> bool:
        return self._closefd

    def fileno(self) -> int:
        if self._closed:
            raise ValueError("I/O operation on closed file")
        return self._fd

    def readable(self) -> bool:
        if self._closed:
            raise ValueError("I/O operation on closed file")
        return self._readable

    def writable(self) -> bool:
        if self._closed:
            raise ValueError("I/O operation on closed file")
        return self._writable

    def seekable(self) -> bool:
        if self._closed:
            raise ValueError("I/O operation on closed file")
        return self._seekable

    async def isatty(self) -> bool:
        if self._closed:
            raise ValueError("I/O operation on closed file")
        return _os.isatty(self._fd)

    def _check_read(self, what: str = "read") -> None:
        if self._closed:
            raise ValueError(f"{what} of closed file")
        if not self._readable:
            raise UnsupportedOperation(what)

    def _check_write(self, what: str = "write") -> None:
        if self._closed:
            raise ValueError(f"{what} to closed file" if what == "write" else f"{what} of closed file")
        if not self._writable:
            raise UnsupportedOperation(what)

    def __repr__(self) -> str:
        cls = f"linuxaio.{type(self).__name__}"
        if self._closed:
            return f"<{cls} [closed]>"
        return f"<{cls} name={self.name!r} mode={self._mode!r}>"

    # ---- raw transfers at the file position ----

    async def _raw_read(self, n: int) -> bytes:
        fd = self._fd
        if self._seekable:
            pos = _lseek(fd, 0, 1)
            data = await _run(_e_pread, fd, n, pos)
            if data:
                _lseek(fd, pos + len(data), 0)
            return data
        return await _run(_e_read, fd, n)

    async def _raw_readinto(self, m: memoryview) -> int:
        fd = self._fd
        if self._seekable:
            pos = _lseek(fd, 0, 1)
            n = await _run(_e_preadinto, fd, m, pos)
            if n:
                _lseek(fd, pos + n, 0)
            return n
        return await _run(_e_readinto, fd, m)

    async def _raw_write(self, data: Any) -> int:
        fd = self._fd
        if self._seekable and not self._append:
            pos = _lseek(fd, 0, 1)
            n = await _run(_e_pwrite, fd, data, pos)
            _lseek(fd, pos + n, 0)
            return n
        return await _run(_e_write, fd, data)

    async def _raw_write_all(self, data: Any) -> None:
        m = memoryview(data)
        while m:
            n = await self._raw_write(m)
            if n <= 0:
                raise OSError(5, "write returned 0 bytes")   # EIO: cannot make progress
            m = m[n:]

    async def _raw_readall(self, parts: list) -> None:
        """Read to the end of the file, appending each piece to parts as it
        arrives (so that a caller can put them back if it fails)."""
        fd = self._fd
        if not self._seekable:
            while True:
                data = await _run(_e_read, fd, _READALL_CHUNK)
                if not data:
                    return
                parts.append(data)
        size = self._size
        self._size = None
        if size is None and self._regular:
            size = _os.fstat(fd).st_size
        pos = _lseek(fd, 0, 1)
        # A regular file with a size reads to its end in one request: ask for
        # one byte more than is left, and a short answer at (or past) the
        # size seen is the end.  Sizes of 0 (procfs) or that lie (sysfs) read
        # until a read returns nothing, as the builtin does.
        trust = bool(size)
        if size and size > pos:
            want = size - pos + 1
        else:
            want = 1 if trust else _READALL_CHUNK
        while True:
            data = await _run(_e_pread, fd, want, pos)
            if not data:
                return
            parts.append(data)
            pos += len(data)
            _lseek(fd, pos, 0)
            if trust and len(data) < want and pos >= size:
                return
            want = min(max(want * 2, _READALL_CHUNK), _READALL_MAX)

    # ---- positional I/O: the cursor stays where it is ----

    async def pread(self, n: int, offset: int) -> bytes:
        """os.pread on the file: up to n bytes at offset (bypasses the buffer)."""
        if self._closed:
            raise ValueError("I/O operation on closed file")
        self._npos += 1
        try:
            return await _run(_e_pread, self._fd, n, offset)
        finally:
            self._pos_done()

    async def preadinto(self, buffer: Any, offset: int) -> int:
        """Read into buffer at offset, no copy; the number of bytes read."""
        if self._closed:
            raise ValueError("I/O operation on closed file")
        self._npos += 1
        try:
            return await _run(_e_preadinto, self._fd, buffer, offset)
        finally:
            self._pos_done()

    async def pwrite(self, data: Any, offset: int) -> int:
        """os.pwrite on the file (bypasses the buffer); the number of bytes
        written.  With O_APPEND, Linux appends whatever the offset."""
        if self._closed:
            raise ValueError("I/O operation on closed file")
        self._npos += 1
        try:
            return await _run(_e_pwrite, self._fd, data, offset)
        finally:
            self._pos_done()

    def _pos_done(self) -> None:
        self._npos -= 1
        if not self._npos:
            if self._nwait:
                self._wake()
            if self._close_when_idle and not self._busy:
                self._close_sync()

    # ---- closing ----

    async def aclose(self) -> None:
        """Flush and close.  The fd is closed even if this is cancelled (an
        unflushed buffer is then lost).  A file opened for writing waits for
        close(2) (it may report a failed write); a read-only one hands the
        close to the engine and does not wait: its fd lingers a moment."""
        if self._closed:
            return
        self._closed = True      # no operation starts from now on
        if self._busy or self._npos:
            try:
                while self._busy or self._npos:
                    await self._park()
            except BaseException:
                # Cancelled while another task's request runs on the fd: the
                # last one to finish closes it.
                self._close_when_idle = True
                raise
        self._busy = True
        try:
            if self._wbuf:
                await self._flush_u()
        finally:
            self._busy = False
            self._drop_buffers()
            if self._nwait:
                self._wake()
            fd, self._fd = self._fd, -1
            if self._closefd and fd >= 0:
                if self._writable:
                    # close(2) can report a failed write (NFS...): wait for it.
                    await _shielded(_e_close, fd)
                else:
                    # Nothing written through this fd: no error worth a wait.
                    # The engine closes it in the background (IO::AIO style).
                    _e_close(fd)

    close = aclose

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    def _drop_buffers(self) -> None:
        pass

    async def _flush_u(self) -> None:
        pass

    def _close_sync(self) -> None:
        """Close now, without the engine (a finalizer, or the end of an
        operation that a cancelled aclose() waited for)."""
        self._closed = True
        self._close_when_idle = False
        fd, self._fd = self._fd, -1
        try:
            self._flush_sync(fd)
        finally:
            self._drop_buffers()
            if self._closefd and fd >= 0:
                try:
                    _os.close(fd)
                except OSError:
                    pass

    def _flush_sync(self, fd: int) -> None:
        pass

    def __del__(self) -> None:
        if self._closed:
            return
        try:
            warnings.warn(f"unclosed file {self!r}", ResourceWarning, stacklevel=2, source=self)
        except Exception:
            pass
        self._close_sync()


# ------------------------------------------------------------- raw files

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
        if self._busy:
            await self._wait_idle("read of closed file")
        self._busy = True
        parts: list = []
        start = _lseek(self._fd, 0, 1) if self._seekable else None
        try:
            await self._raw_readall(parts)
        except BaseException:
            if start is not None:
                _lseek(self._fd, start, 0)
            raise
        finally:
            self._release()
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
        if self._busy:
            await self._wait_idle("readline of closed file")
        self._busy = True
        try:
            return await self._readline_u(limit)
        finally:
            self._release()

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


# -------------------------------------------------------- buffered binary

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
            return await self._read_u(n)
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
        if self._busy:
            await self._wait_idle("read of closed file")
        self._busy = True
        try:
            return await self._read1_u(n)
        finally:
            self._release()

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
        if self._busy:
            await self._wait_idle("peek of closed file")
        self._busy = True
        try:
            if len(self._rbuf) == self._rpos:
                if self._wbuf:
                    await self._flush_u()
                self._rbuf, self._rpos = await self._raw_read(self._chunk), 0
            return self._rbuf[self._rpos:]
        finally:
            self._release()

    async def readinto(self, buffer: Any) -> int:
        self._check_read()
        m = _bytes_view(buffer, "read-write bytes-like object")
        if self._busy:
            await self._wait_idle("read of closed file")
        self._busy = True
        try:
            return await self._readinto_u(m, False)
        finally:
            self._release()

    async def readinto1(self, buffer: Any) -> int:
        self._check_read()
        m = _bytes_view(buffer, "read-write bytes-like object")
        if self._busy:
            await self._wait_idle("read of closed file")
        self._busy = True
        try:
            return await self._readinto_u(m, True)
        finally:
            self._release()

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
        if self._busy:
            await self._wait_idle("readline of closed file")
        self._busy = True
        try:
            return await self._readline_u(limit)
        finally:
            self._release()

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
        if self._busy:
            await self._wait_idle("readline of closed file")
        self._busy = True
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
        finally:
            self._release()
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
        if self._busy:
            await self._wait_idle("write to closed file")
        self._busy = True
        try:
            await self._write_u(m)
        finally:
            self._release()
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
        if self._busy:
            await self._wait_idle("flush of closed file")
        self._busy = True
        try:
            await self._flush_u()
        finally:
            self._release()

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
        if self._busy:
            await self._wait_idle("truncate of closed file")
        self._busy = True
        try:
            await self._flush_u()
            self._rewind()
            if pos is None:
                pos = _lseek(self._fd, 0, 1)
            await _run(_engine.ftruncate, self._fd, pos)
            return pos
        finally:
            self._release()


# ------------------------------------------------------------------ text

_COOKIE_FIELDS = ((0, 64), (64, 32), (96, 32), (128, 32), (160, 8))


def _pack_cookie(pos: int, flags: int = 0, feed: int = 0, skip: int = 0, eof: bool = False) -> int:
    # The builtin's layout (a little-endian C struct: off_t, 3 ints, a char),
    # so cookies compare equal to the builtin's.
    return pos | flags << 64 | feed << 96 | skip << 128 | int(eof) << 160


def _unpack_cookie(cookie: int) -> tuple[int, int, int, int, int]:
    if cookie >> 168:
        raise OverflowError("int too big to convert")
    return tuple((cookie >> shift) & ((1 << bits) - 1) for shift, bits in _COOKIE_FIELDS)  # type: ignore[return-value]


class AsyncTextFile:
    """A text file over an AsyncBufferedFile (``buffer``), like io.TextIOWrapper."""

    def __init__(self, buffer: AsyncBufferedFile, encoding: str, errors: str,
                 newline: str | None, line_buffering: bool, mode: str) -> None:
        self._b = buffer
        self._encoding = encoding
        self._errors = errors
        self._mode = mode
        self._line_buffering = line_buffering
        self._readuniversal = not newline
        self._readtranslate = newline is None
        self._writetranslate = newline != ""
        self._writenl = newline or _os.linesep
        # the line end readline looks for (None: any of \r, \n, \r\n)
        if newline is None or newline == "\n":
            self._nl, self._nllen = "\n", 1
        elif newline == "":
            self._nl, self._nllen = None, 0
        else:
            self._nl, self._nllen = newline, len(newline)
        self._decoder: Any = None
        self._encoder: Any = None
        if buffer._readable:
            dec = codecs.getincrementaldecoder(encoding)(errors)
            if self._readuniversal:
                dec = io.IncrementalNewlineDecoder(dec, self._readtranslate)
            self._decoder = dec
        if buffer._writable:
            self._encoder = codecs.getincrementalencoder(encoding)(errors)
            if buffer._seekable and buffer._tell_u() != 0:
                try:
                    self._encoder.setstate(0)   # no BOM in the middle of a file
                except LookupError:
                    pass
        # Decoded text and how far it has been read.
        self._decoded = ""
        self._dpos = 0
        # The snapshot (tell's starting point): _chunk[_snap_off:] are the bytes
        # fed to the decoder since a point where its buffer was empty and its
        # flags were _snap_flags; they decoded to _decoded[_snap_char:].
        # _chunk is None when there is none (then the position is the buffer's).
        self._chunk: bytes | None = None
        self._snap_off = 0
        self._snap_flags = 0
        self._snap_char = 0

    # ---- attributes ----

    @property
    def buffer(self) -> AsyncBufferedFile:
        return self._b

    @property
    def name(self) -> Any:
        return self._b.name

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def closed(self) -> bool:
        return self._b._closed

    @property
    def encoding(self) -> str:
        return self._encoding

    @property
    def errors(self) -> str:
        return self._errors

    @property
    def newlines(self) -> Any:
        return getattr(self._decoder, "newlines", None)

    @property
    def line_buffering(self) -> bool:
        return self._line_buffering

    @property
    def write_through(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._b.fileno()

    def readable(self) -> bool:
        return self._b.readable()

    def writable(self) -> bool:
        return self._b.writable()

    def seekable(self) -> bool:
        return self._b.seekable()

    async def isatty(self) -> bool:
        return await self._b.isatty()

    def __repr__(self) -> str:
        if self._b._closed:
            return "<linuxaio.AsyncTextFile [closed]>"
        return (f"<linuxaio.AsyncTextFile name={self.name!r} mode={self._mode!r} "
                f"encoding={self._encoding!r}>")

    def _check_open(self) -> None:
        if self._b._closed:
            raise ValueError("I/O operation on closed file.")

    def _check_readable(self) -> None:
        if self._b._closed:
            raise ValueError("I/O operation on closed file.")
        if self._decoder is None:
            raise UnsupportedOperation("not readable")

    async def _lock(self) -> AsyncBufferedFile:
        b = self._b
        if b._busy:
            await b._wait_idle("I/O operation on closed file.")
        b._busy = True
        return b

    # ---- reading ----

    def _save(self) -> tuple:
        return (self._decoded, self._dpos, self._chunk, self._snap_off, self._snap_flags,
                self._snap_char, self._decoder.getstate())

    def _rollback(self, saved: tuple, consumed: list) -> None:
        """Undo a read that failed half-way: text state, decoder, and the bytes
        taken from the buffer go back."""
        (self._decoded, self._dpos, self._chunk, self._snap_off, self._snap_flags,
         self._snap_char, state) = saved
        self._decoder.setstate(state)
        if consumed:
            self._b._unread(b"".join(consumed))

    async def _fill(self, hint: int, consumed: list) -> bool:
        """Decode the next chunk into _decoded (whose text must all have been
        used) and take a snapshot.  False at the end of the file, when the
        decoder's final flush gave nothing more (as the builtin counts it)."""
        dec = self._decoder
        buf, flags = dec.getstate()
        raw = await self._b._read1_u(hint if hint > _TEXT_CHUNK else _TEXT_CHUNK)
        consumed.append(raw)
        text = dec.decode(raw, not raw)
        self._chunk = buf + raw if buf else raw
        self._snap_off = 0
        self._snap_flags = flags
        self._snap_char = 0
        self._decoded = text
        self._dpos = 0
        return bool(raw or text)

    async def read(self, size: Any = -1) -> str:
        n = _size_arg(size)
        self._check_readable()
        if not self._b._busy and n >= 0 and len(self._decoded) - self._dpos >= n:
            p = self._dpos
            self._dpos = p + n
            return self._decoded[p:p + n]
        b = await self._lock()
        try:
            if n < 0:
                return await self._readall_u()
            return await self._read_u(n)
        finally:
            b._release()

    async def _readall_u(self) -> str:
        saved = self._save()
        consumed: list = []
        try:
            rest = self._decoded[self._dpos:]
            raw = await self._b._readall_u()
            consumed.append(raw)
            text = self._decoder.decode(raw, True)
        except BaseException:
            self._rollback(saved, consumed)
            raise
        self._decoded, self._dpos, self._chunk = "", 0, None
        return rest + text if rest else text

    async def _read_u(self, n: int) -> str:
        saved = self._save()
        consumed: list = []
        try:
            d, p = self._decoded, self._dpos
            if len(d) - p >= n:
                self._dpos = p + n
                return d[p:p + n]
            parts = [d[p:]]
            total = len(d) - p
            self._dpos = len(d)
            while total < n:
                more = await self._fill(n - total, consumed)
                d = self._decoded
                take = min(n - total, len(d))
                parts.append(d[:take])
                self._dpos = take
                total += take
                if not more:
                    break
        except BaseException:
            self._rollback(saved, consumed)
            raise
        return "".join(parts)

    def _eol(self, d: str, p: int, parts: list) -> int:
        """The end of the first line in d[p:] (just past its line end), or -1."""
        nl = self._nl
        if nl is not None:
            if nl == "\r\n" and p == 0 and parts and parts[-1].endswith("\r") and d.startswith("\n"):
                return 1       # the \r ended the text before
            i = d.find(nl, p)
            return i + self._nllen if i >= 0 else -1
        # newline='': \r, \n or \r\n; a \r is never last in d except at the end
        # of the file (the newline decoder holds it back until it knows).
        i = d.find("\n", p)
        j = d.find("\r", p, i if i >= 0 else len(d))
        if j >= 0:
            return j + 2 if d.startswith("\n", j + 1) else j + 1
        return i + 1 if i >= 0 else -1

    async def readline(self, size: Any = -1) -> str:
        limit = _size_arg(size)
        if not self._b._busy and limit < 0:
            d, p = self._decoded, self._dpos
            end = self._eol(d, p, ())
            if end >= 0:
                self._dpos = end
                return d[p:end]
        self._check_readable()
        b = await self._lock()
        try:
            return await self._readline_u(limit)
        finally:
            b._release()

    async def _readline_u(self, limit: int) -> str:
        saved = self._save()
        consumed: list = []
        try:
            if limit == 0:
                # As the builtin: it decodes until it has text, or to the end.
                while self._dpos == len(self._decoded):
                    if not await self._fill(0, consumed):
                        self._decoded, self._dpos, self._chunk = "", 0, None
                        break
                return ""
            parts: list = []
            total = 0
            eof = False
            while True:
                d, p = self._decoded, self._dpos
                end = self._eol(d, p, parts)
                if end < 0 and (limit < 0 or total + len(d) - p < limit):
                    if len(d) > p:
                        parts.append(d[p:] if p else d)
                        total += len(d) - p
                    self._dpos = len(d)
                    if eof:
                        if not d:       # nothing more: no snapshot, as the builtin
                            self._decoded, self._dpos, self._chunk = "", 0, None
                        break
                    eof = not await self._fill(0, consumed)
                    continue
                if end < 0 or (limit >= 0 and total + end - p > limit):
                    end = p + limit - total
                parts.append(d[p:end])
                self._dpos = end
                break
        except BaseException:
            self._rollback(saved, consumed)
            raise
        return "".join(parts)

    async def readlines(self, hint: Any = -1) -> list:
        return await _readlines(self, _size_arg(hint))

    def __aiter__(self):
        return self

    async def __anext__(self) -> str:
        nl = self._nl
        if nl is not None and not self._b._busy:
            d = self._decoded
            p = self._dpos
            i = d.find(nl, p)
            if i >= 0:
                i += self._nllen
                self._dpos = i
                return d[p:i]
        line = await self.readline()
        if not line:
            raise StopAsyncIteration
        return line

    # ---- writing ----

    async def write(self, s: str) -> int:
        if self._b._closed:
            raise ValueError("I/O operation on closed file.")
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        if self._encoder is None:
            raise UnsupportedOperation("not writable")
        length = len(s)
        haslf = (self._writetranslate or self._line_buffering) and "\n" in s
        if haslf and self._writetranslate and self._writenl != "\n":
            s = s.replace("\n", self._writenl)
        flush = self._line_buffering and (haslf or "\r" in s)
        b = self._b
        locked = b._busy
        if locked:
            await self._lock()
        try:
            data = self._encoder.encode(s)
            # Text read ahead is dropped (the bytes go at the buffer's position)
            # and the decoder starts afresh, as the builtin's.
            self._decoded, self._dpos, self._chunk = "", 0, None
            if self._decoder is not None:
                self._decoder.reset()
            if not locked:
                if not flush and b._try_buffer(data):
                    return length
                b._busy = locked = True
            await b._write_u(data)
            if flush:
                await b._flush_u()
        finally:
            if locked:
                b._release()
        return length

    async def writelines(self, lines: Iterable[str]) -> None:
        self._check_open()
        for line in lines:
            await self.write(line)

    async def flush(self) -> None:
        self._check_open()
        b = self._b
        if not b._wbuf and not b._busy:
            return
        await self._lock()
        try:
            await b._flush_u()
        finally:
            b._release()

    # ---- position ----

    def _check_seekable(self) -> None:
        self._check_open()
        if not self._b._seekable:
            raise UnsupportedOperation("underlying stream is not seekable")

    async def tell(self) -> int:
        self._check_seekable()
        b = await self._lock()
        try:
            await b._flush_u()
            return self._tell_u()
        finally:
            b._release()

    def _tell_u(self) -> int:
        pos = self._b._tell_u()
        chunk = self._chunk
        if self._decoder is None or chunk is None:
            return pos
        off = self._snap_off
        base = pos - (len(chunk) - off)
        flags = self._snap_flags
        need = self._dpos - self._snap_char
        if need <= 0:
            return _pack_cookie(base, flags)
        dec = self._decoder
        saved = dec.getstate()
        try:
            return self._locate(chunk, off, base, flags, need)
        finally:
            dec.setstate(saved)

    def _locate(self, chunk: bytes, off: int, base: int, flags: int, need: int) -> int:
        """The cookie of the point `need` characters past the snapshot.

        It names the last point at or before it where the decoder holds no
        bytes (a "safe" point: seek starts decoding there), plus the bytes to
        feed and the characters to skip from there, and moves the snapshot up
        to that safe point so that the next tell starts from it."""
        dec = self._decoder
        end = len(chunk)

        def count(k: int, final: bool = False) -> tuple[int, bytes, int]:
            dec.setstate((b"", flags))
            n = len(dec.decode(chunk[off:k], final))
            buf, fl = dec.getstate()
            return n, buf, fl

        # k_min: the fewest bytes that decode to at least `need` characters.
        # Start from a guess at the chunk's bytes-per-character ratio (exact
        # for 8-bit and fixed-width text), then gallop and bisect.
        nchars = len(self._decoded) - self._snap_char
        guess = off + (need * (end - off) // nchars if nchars > 0 else need)
        guess = min(max(guess, off + 1), end)
        if count(guess)[0] >= need:
            hi, step = guess, 1
            lo = hi - 1
            while lo > off and count(lo)[0] >= need:
                hi = lo
                step *= 2
                lo = max(off, hi - step)
        else:
            lo, step = guess, 1
            hi = min(end, lo + 1)
            while count(hi)[0] < need:
                if hi == end:
                    hi = -1       # not even the whole chunk: needs the decoder's final flush
                    break
                lo = hi
                step *= 2
                hi = min(end, lo + step)
        if hi >= 0:
            while hi - lo > 1:     # count(lo) < need <= count(hi)
                mid = (lo + hi) // 2
                if count(mid)[0] >= need:
                    hi = mid
                else:
                    lo = mid
            kmin, eof = hi, False
            n, buf, fl = count(kmin)
            if n == need and not buf:
                self._advance(kmin, fl, need)
                return _pack_cookie(base + kmin - off, fl)
            k = kmin - 1
        else:
            kmin, eof = end, True
            if count(end, True)[0] < need:
                raise OSError("can't reconstruct logical file position")
            k = end
        # Walk back to the nearest safe point.
        while k > off:
            n, buf, fl = count(k)
            if not buf:
                break
            k -= 1
        else:
            n, fl = 0, flags
        self._advance(k, fl, n)
        return _pack_cookie(base + k - off, fl, kmin - k, need - n, eof)

    def _advance(self, k: int, flags: int, nchars: int) -> None:
        self._snap_off = k
        self._snap_flags = flags
        self._snap_char += nchars

    async def seek(self, cookie: Any, whence: int = 0) -> int:
        cookie = _index(cookie)
        self._check_seekable()
        b = await self._lock()
        try:
            if whence == 1:
                if cookie != 0:
                    raise UnsupportedOperation("can't do nonzero cur-relative seeks")
                await b._flush_u()
                cookie = self._tell_u()
                whence = 0
            if whence == 2:
                if cookie != 0:
                    raise UnsupportedOperation("can't do nonzero end-relative seeks")
                await b._flush_u()
                self._decoded, self._dpos, self._chunk = "", 0, None
                if self._decoder is not None:
                    self._decoder.reset()
                pos = b._seek_u(0, 2)
                self._reset_encoder(pos)
                return pos
            if whence != 0:
                raise ValueError(f"invalid whence ({whence}, should be 0, 1 or 2)")
            if cookie < 0:
                raise ValueError(f"negative seek position {cookie}")
            await b._flush_u()
            start, flags, feed, skip, need_eof = _unpack_cookie(cookie)
            b._seek_u(start, 0)
            self._decoded, self._dpos, self._chunk = "", 0, None
            dec = self._decoder
            if dec is not None:
                if start == 0 and flags == 0:
                    dec.reset()      # the start of the file: as the builtin, not setstate
                else:
                    dec.setstate((b"", flags))
                self._chunk, self._snap_off, self._snap_flags, self._snap_char = b"", 0, flags, 0
            if skip:
                if dec is None:
                    raise OSError("can't restore logical file position")
                data = await b._read_u(feed)
                text = dec.decode(data, bool(need_eof))
                self._chunk = data
                self._decoded = text
                if len(text) < skip:
                    raise OSError("can't restore logical file position")
                self._dpos = skip
            self._reset_encoder(cookie)
            return cookie
        finally:
            b._release()

    def _reset_encoder(self, position: int) -> None:
        enc = self._encoder
        if enc is not None:
            if position == 0:
                enc.reset()
            else:
                enc.setstate(0)

    async def truncate(self, pos: Any = None) -> int:
        self._check_open()
        await self.flush()
        if pos is None:
            pos = await self.tell()
        return await self._b.truncate(pos)

    # ---- positional I/O, closing ----

    async def pread(self, n: int, offset: int) -> bytes:
        return await self._b.pread(n, offset)

    async def preadinto(self, buffer: Any, offset: int) -> int:
        return await self._b.preadinto(buffer, offset)

    async def pwrite(self, data: Any, offset: int) -> int:
        return await self._b.pwrite(data, offset)

    async def aclose(self) -> None:
        b = self._b
        if b._closed:
            return
        self._decoded, self._dpos, self._chunk = "", 0, None
        await b.aclose()

    close = aclose

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    def __del__(self) -> None:
        b = getattr(self, "_b", None)
        if b is None or b._closed:
            return
        try:
            warnings.warn(f"unclosed file {self!r}", ResourceWarning, stacklevel=2, source=self)
        except Exception:
            pass
        b._close_sync()


# ------------------------------------------------------------------ open

_MODES: dict = {}


def _parse_mode(mode: str) -> tuple:
    """mode -> (flags, readable, writable, append, binary, raw mode); cached."""
    spec = _MODES.get(mode)
    if spec is not None:
        return spec
    seen = set()
    for c in mode:
        if c not in "xrwa+tb" or c in seen:
            raise ValueError(f"invalid mode: {mode!r}")
        seen.add(c)
    if "t" in seen and "b" in seen:
        raise ValueError("can't have text and binary mode at once")
    kinds = len(seen & set("xrwa"))
    if kinds > 1:
        raise ValueError("must have exactly one of create/read/write/append mode")
    plus = "+" in seen
    readable = "r" in seen or plus
    writable = "r" not in seen or plus
    flags = _os.O_RDWR if readable and writable else _os.O_RDONLY if readable else _os.O_WRONLY
    if "x" in seen:
        flags |= _os.O_CREAT | _os.O_EXCL
        raw = "xb+" if plus else "xb"
    elif "w" in seen:
        flags |= _os.O_CREAT | _os.O_TRUNC
        raw = "rb+" if plus else "wb"
    elif "a" in seen:
        flags |= _os.O_CREAT | _os.O_APPEND
        raw = "ab+" if plus else "ab"
    else:
        raw = "rb+" if plus else "rb"
    spec = (flags | getattr(_os, "O_CLOEXEC", 0), readable, writable, "a" in seen, "b" in seen,
            raw if kinds else None)
    if len(_MODES) < 64:
        _MODES[mode] = spec
    return spec


def _type_name(value: Any) -> str:
    return "None" if value is None else type(value).__name__


def _locale_encoding() -> str:
    if sys.flags.utf8_mode:
        return "utf-8"
    getencoding = getattr(locale, "getencoding", None)
    return getencoding() if getencoding else locale.getpreferredencoding(False)


class _Opening:
    """What linuxaio.open() returns: await it for the file, or use it in
    ``async with`` (the file is closed on the way out)."""

    __slots__ = ("_args", "_file")

    def __init__(self, args: tuple) -> None:
        self._args = args
        self._file: Any = None

    def __await__(self):
        return _open(*self._args).__await__()

    async def __aenter__(self):
        self._file = f = await _open(*self._args)
        return f

    async def __aexit__(self, *exc: Any) -> None:
        f, self._file = self._file, None
        if f is not None:
            await f.aclose()


def open(file: Any, mode: str = "r", buffering: int = -1, encoding: str | None = None,
         errors: str | None = None, newline: str | None = None, closefd: bool = True,
         opener: Any = None) -> _Opening:
    """Open a file, like the builtin open(), for async use:
    ``f = await linuxaio.open(...)`` or ``async with linuxaio.open(...) as f``.

    The arguments are checked at once (the same errors as the builtin's);
    the file is opened when awaited, by an engine request."""
    if not isinstance(mode, str):
        raise TypeError(f"open() argument 'mode' must be str, not {_type_name(mode)}")
    for pname, value in (("encoding", encoding), ("errors", errors), ("newline", newline)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"open() argument '{pname}' must be str or None, "
                            f"not {_type_name(value)}")
    buffering = _index(buffering)
    if isinstance(file, int):
        if isinstance(file, bool):
            warnings.warn("bool is used as a file descriptor", RuntimeWarning, stacklevel=2)
        file = int(file)
        if file < 0:
            raise ValueError("negative file descriptor")
    else:
        file = _os.fspath(file)
        if not closefd:
            raise ValueError("Cannot use closefd=False with file name")
    flags, readable, writable, append, binary, rawmode = _parse_mode(mode)
    if binary:
        if encoding is not None:
            raise ValueError("binary mode doesn't take an encoding argument")
        if errors is not None:
            raise ValueError("binary mode doesn't take an errors argument")
        if newline is not None:
            raise ValueError("binary mode doesn't take a newline argument")
        if buffering == 1:
            warnings.warn("line buffering (buffering=1) isn't supported in binary mode, "
                          "the default buffer size will be used", RuntimeWarning, stacklevel=2)
    if rawmode is None:
        raise ValueError("Must have exactly one of create/read/write/append mode "
                         "and at most one plus")
    if not binary:
        if buffering == 0:
            raise ValueError("can't have unbuffered text I/O")
        if newline not in (None, "", "\n", "\r", "\r\n"):
            raise ValueError(f"illegal newline value: {newline}")
        encoding = io.text_encoding(encoding, 3)
        if encoding == "locale":
            encoding = _locale_encoding()
        if not codecs.lookup(encoding)._is_text_encoding:
            raise LookupError(f"{encoding!r} is not a text encoding; "
                              "use codecs.open() to handle arbitrary codecs")
        if errors is None:
            errors = "strict"
    return _Opening((file, mode, buffering, encoding, errors, newline, bool(closefd), opener,
                     flags, readable, writable, append, binary, rawmode))


async def _open(file: Any, mode: str, buffering: int, encoding: Any, errors: Any, newline: Any,
                closefd: bool, opener: Any, flags: int, readable: bool, writable: bool,
                append: bool, binary: bool, rawmode: str) -> Any:
    st = None
    if isinstance(file, int):
        fd = file
    elif opener is None:   # open and fstat in one engine request
        fd, st = await _run(_e_open_stat, file, flags, 0o666, None)
    else:
        fd = opener(file, flags)
        if hasattr(fd, "__await__"):
            fd = await fd
        if not isinstance(fd, int):
            raise TypeError("expected integer from opener")
        if fd < 0:
            raise ValueError(f"opener returned {fd}")
    try:
        if st is None:
            st = await _run(_e_fstat, fd)
        if _stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(21, _os.strerror(21), file)
        try:
            pos = _lseek(fd, 0, 2 if append else 1)
        except OSError:
            pos = None
        line_buffering = False
        if buffering == 1 or (buffering < 0 and _stat.S_ISCHR(st.st_mode) and _os.isatty(fd)):
            buffering = -1
            line_buffering = not binary
        if buffering == 0:
            return AsyncRawFile(fd, file, rawmode, closefd, readable, writable, append, st, pos)
        if buffering < 0:
            size = st.st_blksize if st.st_blksize > 1 else DEFAULT_BUFFER_SIZE
            chunk = max(size, READ_AHEAD)
        else:
            size = chunk = buffering
        b = AsyncBufferedFile(fd, file, rawmode, closefd, readable, writable, append, st, pos,
                              size, chunk)
        if binary:
            return b
        try:
            return AsyncTextFile(b, encoding, errors, newline, line_buffering, mode)
        except BaseException:
            b._closed = True
            raise
    except BaseException:
        if not isinstance(file, int):    # ours: the caller never saw it
            try:
                _os.close(fd)
            except OSError:
                pass
        raise
