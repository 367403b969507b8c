"""slurp(into=, direct=): a whole file (or a range) read in chunks kept many deep.

The plain slurp is one engine request (open, size, read, close in one
worker).  Reading into the caller's buffer, or with O_DIRECT, is a chain of
engine requests instead: open, fstat, then the range split into CHUNK-sized
reads with DEPTH of them in flight (so the device sees a deep queue: several
workers today, the ring where it runs reads), then close.  The async face
(slurp) and the callback face (aio_slurp) share the plan (_Plan); only how
they wait differs.

O_DIRECT needs the buffer's address, the offset and the length aligned
(dio_alignment()).  The plan reads aligned chunks straight into the target
where that is aligned, and through an aligned bounce buffer where it is not
(the caller's bytearray, an unaligned offset, the last partial block of the
file: the kernel returns a short read at the end of the file, so the tail is
read as one whole aligned block).
"""
from __future__ import annotations

import os
import stat as _stat
from collections import deque

from . import _engine

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

CHUNK = 4 << 20     # bytes per read: a multiple of any direct I/O alignment
DEPTH = 16          # reads in flight at once: 64 MiB (W9: 8 deep fell short of fio's 32 x 1 MiB)


def _align_up(n: int, a: int) -> int:
    return -(-n // a) * a


def _mmap(size: int) -> Any:
    import mmap   # private, as aligned_buffer: a forked child's writes stay its own
    return mmap.mmap(-1, max(size, 1), flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)


class _Chunk:
    __slots__ = ("pos", "n", "buf", "boff", "bounce", "req")

    def __init__(self, pos: int, n: int, buf: Any, boff: int, bounce: Any) -> None:
        self.pos, self.n, self.buf, self.boff, self.bounce = pos, n, buf, boff, bounce
        self.req = None


class _Plan:
    """What to read, where, and what it came to."""

    def __init__(self, path: Any, offset: Any, length: Any, into: Any, direct: bool) -> None:
        if isinstance(offset, bool) or not isinstance(offset, int):
            raise TypeError(f"offset must be an int, not {type(offset).__name__}")
        if length is not None and (isinstance(length, bool) or not isinstance(length, int)):
            raise TypeError(f"length must be an int or None, not {type(length).__name__}")
        if offset < 0:
            raise ValueError("offset must be >= 0")
        if length is not None and length < 0:
            raise ValueError("length must be >= 0")
        self.view = None
        if into is not None:
            view = memoryview(into)
            if view.readonly:
                raise TypeError("into must be a writable buffer")
            if not view.c_contiguous:
                raise ValueError("into must be a contiguous buffer")
            self.view = view.cast("B") if view.format != "B" or view.ndim != 1 else view
            if length is not None and length > len(self.view):
                raise ValueError(f"length {length} exceeds the buffer's {len(self.view)} bytes")
        os.fspath(path)   # TypeError now, not from a worker
        self.path, self.offset, self.length, self.direct = path, offset, length, bool(direct)
        self.flags = os.O_RDONLY | os.O_CLOEXEC | (os.O_DIRECT if direct else 0)
        self.failure: BaseException | None = None
        self.short_end: int | None = None   # file position where a read came back short
        self.pending: deque[_Chunk] = deque()

    def start(self, st: os.stat_result, fd: int) -> None:
        """Size known: set up the chunks."""
        offset = self.offset
        if _stat.S_ISREG(st.st_mode) and st.st_size:
            end = st.st_size if self.length is None else min(st.st_size, offset + self.length)
        else:   # /proc, a device: read on until the end (or the buffer is full)
            end = offset + self.length if self.length is not None else None
        if self.view is not None:
            cap = offset + len(self.view)
            end = cap if end is None else min(end, cap)
        self.end = end
        self.align = self.mem_align = 1
        if self.direct:
            self.mem_align, self.align = _engine.dio_alignment(fd)
        self.base = offset - offset % self.align   # the first aligned position
        if self.view is None and end is not None:   # our own buffer: aligned, base at 0
            self.target = _mmap(_align_up(end - self.base, self.align))
            self.target_base = self.base
        elif self.view is None:
            self.target = bytearray()
            self.target_base = offset
        else:
            self.target, self.target_base = self.view, offset
        self.target_addr = _engine._buffer_address(self.target) if self.direct else 0
        self.next_pos = self.base
        self.bounces: list[Any] = []

    def _chunk_at(self, pos: int) -> _Chunk | None:
        end = self.end
        if end is not None and pos >= end or self.short_end is not None:
            return None
        if end is None:   # unknown size: one read at a time, to the end
            if self.pending:
                return None
            bounce = self.bounces.pop() if self.bounces else _mmap(CHUNK)
            return _Chunk(pos, CHUNK, bounce, 0, bounce)
        n = min(CHUNK - (pos - self.base) % CHUNK, end - pos)
        if self.direct:
            n = _align_up(n, self.align)
        t = pos - self.target_base
        tlen = len(self.target)
        if (t >= 0 and t + n <= tlen
                and (not self.direct or (self.target_addr + t) % self.mem_align == 0)):
            return _Chunk(pos, n, self.target, t, None)
        bounce = self.bounces.pop() if self.bounces else _mmap(CHUNK)
        return _Chunk(pos, n, bounce, 0, bounce)

    def next_chunk(self) -> _Chunk | None:
        c = self._chunk_at(self.next_pos)
        if c is not None:
            self.next_pos += c.n
            self.pending.append(c)
        return c

    def finished(self, c: _Chunk, got: Any) -> None:
        """A chunk's read is back: got is its byte count or its OSError."""
        if isinstance(got, BaseException):
            if self.failure is None:
                self.failure = got
            got = 0
        if c.bounce is not None:
            lo = max(c.pos, self.target_base)
            hi = c.pos + got if self.end is None else min(c.pos + got, self.end)
            if hi > lo:
                t = lo - self.target_base
                self.target[t:t + hi - lo] = memoryview(c.bounce)[lo - c.pos:hi - c.pos]
            self.bounces.append(c.bounce)
        if got < c.n:
            end = c.pos + got
            if self.short_end is None or end < self.short_end:
                self.short_end = end

    def result(self) -> Any:
        if self.failure is not None:
            raise self.failure
        end = self.next_pos if self.end is None else self.end
        if self.short_end is not None:
            end = min(end, self.short_end)
        n = max(0, end - self.offset)
        if self.view is not None:
            return n
        t = self.offset - self.target_base
        data = bytes(memoryview(self.target)[t:t + n])
        if not isinstance(self.target, bytearray):
            self.target.close()
        return data


async def slurp(path: Any, offset: int = 0, length: int | None = None, *, into: Any = None,
                direct: bool = False) -> Any:
    """linuxaio.slurp with into= or direct=True (see there)."""
    from ._loop import run, shielded, submit_now
    plan = _Plan(path, offset, length, into, direct)
    fd = await run(_engine.aio_open, path, plan.flags, 0)
    window: deque[tuple[_Chunk, Any]] = deque()
    try:
        plan.start(await run(_engine.aio_stat, fd), fd)
        while True:
            while len(window) < DEPTH and plan.failure is None:
                c = plan.next_chunk()
                if c is None:
                    break
                window.append((c, submit_now(_engine.aio_read, fd, c.pos, c.n, c.buf, c.boff)))
            if not window:
                break
            c, req = window.popleft()
            plan.pending.popleft()
            try:
                got = await req
            except OSError as exc:
                got = exc
            plan.finished(c, got)
    except BaseException:
        _close_after(fd, [req for _, req in window])
        raise
    await shielded(_engine.aio_close, fd)
    return plan.result()


def _close_after(fd: int, reqs: list) -> None:
    """Cancel the reads in flight and close fd once none can still use it:
    a read a worker already runs would otherwise find the fd number closed,
    or worse, reused for another file."""
    running = []
    for req in reqs:
        req.cancel()
        # Under trio the reads not yet awaited were never submitted, and the
        # one awaited is out of reach: closing now can at worst let it read
        # another file's bytes into this (abandoned) buffer, or fail EBADF.
        if hasattr(req, "done") and not req.done():
            running.append(req)
    if not running:
        os.close(fd)
        return
    grp = _engine.aio_group(lambda _: os.close(fd))
    grp.add(*running)


class _CallbackSlurp:
    """aio_slurp(into=/direct=): the same plan, driven by callbacks in a group."""

    def __init__(self, plan: _Plan, callback: Callable[[Any], Any] | None, pri: int) -> None:
        self.plan, self.pri, self.fd = plan, pri, -1
        self.user_callback = callback
        self.inflight = 0
        self.grp = _engine.aio_group(self._group_done)

    def _group_done(self, value: Any) -> None:
        if self.user_callback is not None:
            self.user_callback(value)

    def begin(self) -> Any:
        self.grp.add(_engine.aio_open(self.plan.path, self.plan.flags, 0, self._opened, pri=self.pri))
        return self.grp

    def _opened(self, fd: Any) -> None:
        if isinstance(fd, BaseException):
            self.grp.result(fd)
            return
        self.fd = fd
        self.grp.add(_engine.aio_stat(fd, self._sized, pri=self.pri))

    def _sized(self, st: Any) -> None:
        if isinstance(st, BaseException):
            self.plan.failure = st
        else:
            self.plan.start(st, self.fd)
        self._more()

    def _more(self) -> None:
        plan = self.plan
        while self.inflight < DEPTH and plan.failure is None:
            c = plan.next_chunk()
            if c is None:
                break
            self.inflight += 1
            self.grp.add(_engine.aio_read(self.fd, c.pos, c.n, c.buf, c.boff,
                                          lambda got, c=c: self._read(c, got), pri=self.pri))
        if not self.inflight:
            self.grp.add(_engine.aio_close(self.fd, self._closed, pri=self.pri))
            self.fd = -1

    def _read(self, c: _Chunk, got: Any) -> None:
        self.inflight -= 1
        self.plan.pending.remove(c)
        self.plan.finished(c, got)
        self._more()

    def _closed(self, _: Any) -> None:
        try:
            self.grp.result(self.plan.result())
        except OSError as exc:
            self.grp.result(exc)

    def __del__(self) -> None:
        # A cancelled group: no callback closed the fd.  Nothing can use it
        # now: every request holding this object (its callbacks) is gone.
        if self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError:
                pass


def aio_slurp(path: Any, offset: Any, length: Any, callback: Any, *, pri: int, into: Any,
              direct: bool) -> Any:
    """linuxaio.aio_slurp with into= or direct=True: a group."""
    return _CallbackSlurp(_Plan(path, offset, length, into, direct), callback, pri).begin()
