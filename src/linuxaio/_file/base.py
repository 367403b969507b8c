"""What the async binary files share: the fd, the mode, the per-file lock,
closing, positional I/O and the raw transfers at the file position (the
builtin's FileIO underneath its buffered classes)."""
from __future__ import annotations

import io
import os as _os
import stat as _stat
import sys
import warnings
from _thread import get_ident as _get_ident
from operator import index as _index

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Awaitable, Callable, TypeVar
    _T = TypeVar("_T")

from .. import _engine
from .. import _loop
from .._loop import run as _run

UnsupportedOperation = io.UnsupportedOperation
DEFAULT_BUFFER_SIZE = io.DEFAULT_BUFFER_SIZE
READ_AHEAD = 64 * 1024       # default buffering reads and writes this much at a time
_TEXT_CHUNK = 8192           # bytes a text file decodes at a time (the builtin's _CHUNK_SIZE)
_READALL_CHUNK = 64 * 1024   # readall of a file of unknown size starts with this much
_READALL_MAX = 1 << 24

_lseek = _os.lseek
_e_close = _engine.aio_close
_e_open_stat, _e_fstat = _engine.open_stat, _engine.fstat
_e_read, _e_pread = _engine.read, _engine.pread
_e_readinto, _e_preadinto = _engine.readinto, _engine.preadinto
_e_write, _e_pwrite = _engine.write, _engine.pwrite
_e_write_close = _engine.write_close

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


# ---------------------------------------------------------------- the type

class AsyncFile:
    """What every linuxaio file object is (``isinstance(f, linuxaio.AsyncFile)``):
    anyio.AsyncFile's methods and attributes, so that code typed against
    either works with both.

    The three classes linuxaio.open gives (AsyncRawFile, AsyncBufferedFile,
    AsyncTextFile) and the files of linuxaio.wrap_file derive from it.  A
    method a kind of file lacks raises io.UnsupportedOperation, as io.IOBase's
    do (``read1`` of a text file...).  ``limiter`` is the limiter given to
    open/wrap_file (None: unbounded); ``wrapped`` the synchronous file object
    given to wrap_file (None for a file linuxaio opened: there is none)."""

    _limiter: Any = None
    _adopted: Any = None

    @property
    def limiter(self) -> Any:
        return self._limiter

    @property
    def wrapped(self) -> Any:
        return self._adopted

    def __aiter__(self):
        return self

    async def __anext__(self) -> Any:
        line = await self.readline()
        if not line:
            raise StopAsyncIteration
        return line

    async def aclose(self) -> None:
        raise UnsupportedOperation("aclose")

    async def read(self, size: int = -1) -> Any:
        raise UnsupportedOperation("read")

    async def read1(self, size: int = -1) -> bytes:
        raise UnsupportedOperation("read1")

    async def readline(self, size: int = -1) -> Any:
        raise UnsupportedOperation("readline")

    async def readlines(self, hint: int = -1) -> list:
        raise UnsupportedOperation("readlines")

    async def readinto(self, b: Any) -> int:
        raise UnsupportedOperation("readinto")

    async def readinto1(self, b: Any) -> int:
        raise UnsupportedOperation("readinto1")

    async def write(self, b: Any) -> int:
        raise UnsupportedOperation("write")

    async def writelines(self, lines: Any) -> None:
        raise UnsupportedOperation("writelines")

    async def truncate(self, size: int | None = None) -> int:
        raise UnsupportedOperation("truncate")

    async def seek(self, offset: int, whence: int = 0) -> int:
        raise UnsupportedOperation("seek")

    async def tell(self) -> int:
        raise UnsupportedOperation("tell")

    async def flush(self) -> None:
        raise UnsupportedOperation("flush")

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


_LIMITED: dict = {}
_NOT_LIMITED = {"aclose", "close", "__aenter__", "__aexit__", "__aiter__"}


def limited_class(cls: type) -> type:
    """cls with each public coroutine method run under self.limiter: the class
    of a file opened with a limiter (files without one keep their class and
    pay nothing).  Closing is never limited: it must go ahead, cancelled or not."""
    sub = _LIMITED.get(cls)
    if sub is None:
        import inspect
        from .._limit import limited_method
        ns: dict = {"__module__": cls.__module__, "__qualname__": cls.__qualname__}
        for name in dir(cls):
            if name in _NOT_LIMITED or (name.startswith("_") and name != "__anext__"):
                continue
            value = inspect.getattr_static(cls, name)
            if inspect.iscoroutinefunction(value):
                ns[name] = limited_method(value)
        sub = _LIMITED[cls] = type(cls.__name__, (cls,), ns)
    return sub


def set_limiter(f: Any, limiter: Any) -> Any:
    """Give file f a limiter (its class becomes the limited twin)."""
    if limiter is not None:
        f.__class__ = limited_class(type(f))
        f._limiter = limiter
    return f


# ---------------------------------------------------------------- closing

def _settle(fut: Any, res: Any) -> None:
    if not fut.done():       # else cancelled: the close went ahead all the same
        if isinstance(res, BaseException):
            fut.set_exception(res)
        else:
            fut.set_result(res)


def _closing(submit: Any, *args: Any, checkpoint: bool = False) -> Any:
    """Await submit(*args), a request that closes an fd, which a
    cancellation must not stop (_loop.shielded's contract).  Under asyncio,
    the request reports to a callback that settles a plain future, and
    the task awaits that: asyncio.shield's outer future, its two done
    callbacks and its extra loop turn cost about 20 us of the loop's time
    per close (W2a: one per file written).  checkpoint: under trio, a
    cancellation that came meanwhile is raised once the request is done
    (as asyncio raises it at once); else trio's shield swallows it."""
    loop = _loop._asyncio_loop()
    if loop is None:
        return _trio_closing(submit, args) if checkpoint else _loop.shielded(submit, *args)
    fut = loop.create_future()
    owner = _get_ident()

    def done(res: Any) -> None:
        # the callback runs in whichever thread drains it (another
        # thread's loop may): the future is settled in its loop's own
        if _get_ident() == owner:
            _settle(fut, res)
        else:
            loop.call_soon_threadsafe(_settle, fut, res)
    submit(*args, done)
    return fut


async def _trio_closing(submit: Any, args: tuple) -> Any:
    res = await _loop.shielded(submit, *args)
    await sys.modules["trio"].lowlevel.checkpoint_if_cancelled()
    return res


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


class _FileBase(AsyncFile):
    """What the binary classes share: the fd, the mode, the per-file lock,
    closing, positional I/O and the raw transfers at the file position."""

    # class defaults, so that __del__ of a half-built object stays quiet
    _closed = True
    _fd = -1
    _busy = False
    _wbuf: Any = b""
    _detached = False

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
        self._st = st
        self._size = st.st_size if self._regular else None   # for the first readall
        self._busy = False       # an operation that may suspend is in progress
        self._nwait = 0          # tasks waiting for it to end
        self._parked: Any = None   # a _loop.Parking of them, once one waits
        self._npos = 0           # positional requests in flight
        self._close_when_idle = False
        self._closed = False

    # ---- the lock: an operation that may suspend holds _busy ----

    async def _wait_idle(self, msg: str = "I/O operation on closed file") -> None:
        while self._busy:
            await self._park()
        if self._closed:
            raise ValueError(msg)

    async def _locked(self, msg: str, op: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        """await op(*args) holding the lock: once whatever holds it now is
        done (ValueError(msg) if that closed the file), released however op
        ends."""
        if self._busy:
            await self._wait_idle(msg)
        self._busy = True
        try:
            return await op(*args)
        finally:
            self._release()

    async def _park(self) -> None:
        self._nwait += 1
        try:
            if self._parked is None:
                self._parked = _loop.Parking()
            await self._parked.park()
        finally:
            self._nwait -= 1

    def _release(self) -> None:
        self._busy = False
        if self._nwait:
            self._wake()
        if self._close_when_idle and not self._npos:
            self._close_sync()

    def _wake(self) -> None:
        if self._parked is not None:
            self._parked.unpark_all()

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
            # an fstat can block (NFS, FUSE): not on the loop's thread
            size = (await _run(_e_fstat, fd)).st_size
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
        """Flush and close.  The fd is closed even if this is cancelled (a
        pending buffer is still written: the write and the close are one
        request).  A file opened for writing waits for close(2) (it may
        report a failed write); a read-only one hands the close to the
        engine and does not wait: its fd lingers a moment."""
        if self._closed:
            if self._detached:
                raise ValueError("raw stream has been detached")
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
        fd = self._fd
        if self._wbuf and self._closefd and fd >= 0:
            # Writes pending: they and the close are one request
            # (write_close), a round trip fewer than a flush and a close.
            # Shielded as the close alone is: the buffer goes out even if
            # this is cancelled.  An exported bytearray cannot grow, and
            # nothing may touch this one again: the file has a new one.
            wb, self._wbuf = self._wbuf, bytearray()
            self._fd = -1
            self._drop_buffers()
            if self._nwait:
                self._wake()
            # (under trio, a cancellation is raised once it is done, as
            # a cancelled flush raised it)
            await _closing(_e_write_close, fd, wb, checkpoint=True)
            return
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
                    await _closing(_e_close, fd)
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


