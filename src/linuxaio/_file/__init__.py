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

import codecs
import io
import locale
import os as _os
import stat as _stat
import sys
import warnings
from operator import index as _index

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from .. import _engine
from .._loop import run as _run
from .base import (
    DEFAULT_BUFFER_SIZE, READ_AHEAD, AsyncFile, _e_fstat, _e_open_stat, _lseek, set_limiter)
from .buffered import AsyncBufferedFile
from .raw import AsyncRawFile
from .text import AsyncTextFile

__all__ = ["open", "AsyncFile", "AsyncRawFile", "AsyncBufferedFile", "AsyncTextFile"]


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
         opener: Any = None, *, limiter: Any = None) -> _Opening:
    """Open a file, like the builtin open(), for async use:
    ``f = await linuxaio.open(...)`` or ``async with linuxaio.open(...) as f``.

    The arguments are checked at once (the same errors as the builtin's);
    the file is opened when awaited, by an engine request.  ``limiter`` (as
    anyio.open_file's): a CapacityLimiter bounding how many of this file's
    requests run at once (the open included); ``f.limiter`` gives it back."""
    return _Opening(_open_args(file, mode, buffering, encoding, errors, newline, closefd,
                               opener, limiter, _CLASSES))


# What _open makes: the raw file, the buffer under a text file, the text
# file, and a binary buffered file opened for reading / write-only
# (linuxaio.aiofiles gives aiofiles' class names there).
_CLASSES = (AsyncRawFile, AsyncBufferedFile, AsyncTextFile, AsyncBufferedFile, AsyncBufferedFile)


def _open_args(file: Any, mode: str, buffering: int, encoding: Any, errors: Any, newline: Any,
               closefd: Any, opener: Any, limiter: Any, classes: tuple) -> tuple:
    """open()'s arguments checked (the builtin's errors), as _open takes them."""
    if limiter is not None:
        from .._limit import check
        limiter = check(limiter)
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
        if isinstance(file, tuple) and len(file) == 2 and isinstance(file[0], _engine.WorkingDir):
            file = (file[0], _os.fspath(file[1]))   # (wd, relpath): the engine resolves it
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
    return (file, mode, buffering, encoding, errors, newline, bool(closefd), opener,
            flags, readable, writable, append, binary, rawmode, limiter, classes)


async def _open(file: Any, mode: str, buffering: int, encoding: Any, errors: Any, newline: Any,
                closefd: bool, opener: Any, flags: int, readable: bool, writable: bool,
                append: bool, binary: bool, rawmode: str, limiter: Any = None,
                classes: tuple = _CLASSES) -> Any:
    if limiter is not None:
        from .._limit import run_limited
        f = await run_limited(limiter, _open, file, mode, buffering, encoding, errors, newline,
                              closefd, opener, flags, readable, writable, append, binary,
                              rawmode, None, classes)
        return set_limiter(f, limiter)
    raw_cls, buffered_cls, text_cls, reader_cls, writer_cls = classes
    st = None
    fresh = False   # opened here by name: the file offset is 0
    if isinstance(file, int):
        fd = file
    elif opener is None:   # open and fstat in one engine request
        fd, st = await _run(_e_open_stat, file, flags, 0o666, None)
        fresh = True
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
        if fresh and not append and _stat.S_ISREG(st.st_mode):
            pos = 0          # no lseek to ask: a regular file, seekable, at 0
        else:
            try:
                pos = _lseek(fd, 0, 2 if append else 1)
            except OSError:
                pos = None
        line_buffering = False
        if buffering == 1 or (buffering < 0 and _stat.S_ISCHR(st.st_mode) and _os.isatty(fd)):
            buffering = -1
            line_buffering = not binary
        if buffering == 0:
            return raw_cls(fd, file, rawmode, closefd, readable, writable, append, st, pos)
        if buffering < 0:
            size = st.st_blksize if st.st_blksize > 1 else DEFAULT_BUFFER_SIZE
            chunk = max(size, READ_AHEAD)
        else:
            size = chunk = buffering
        if binary:
            return (reader_cls if readable else writer_cls)(
                fd, file, rawmode, closefd, readable, writable, append, st, pos, size, chunk)
        b = buffered_cls(fd, file, rawmode, closefd, readable, writable, append, st, pos,
                         size, chunk)
        try:
            return text_cls(b, encoding, errors, newline, line_buffering, mode)
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
