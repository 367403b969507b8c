"""IO::AIO's composite requests on the callback API: aio_copy, aio_move,
aio_rmtree.

Each is a group (linuxaio.aio_group) whose requests are added as the work
goes on, from the callbacks of the ones before: cancel() on the group
cancels all of it.  The callback gets 0, or the OSError of the first
failure.
"""
from __future__ import annotations

import errno as _errno
import os as _os
import stat as _stat
from typing import Any, Callable, Optional

from . import _engine

DT_DIR = 4
# copy_data's flags (src/engine/ops_copy.c): mode, owner, times
_META = 1 | 2 | 4


class _Composite:
    """The top group and its first failure (what its callback gets)."""

    __slots__ = ("grp", "error")

    def __init__(self, callback: Optional[Callable[[Any], Any]]) -> None:
        self.grp = _engine.aio_group(callback)
        self.grp.result(0)
        self.error: Optional[BaseException] = None


def _group(callback: Optional[Callable[[Any], Any]], pri: int) -> _Composite:
    return _Composite(callback)


def _fail(c: _Composite, exc: BaseException) -> None:
    if c.error is None:
        c.error = exc
        c.grp.result(exc)


def aio_copy(src: Any, dst: Any, callback: Optional[Callable[[Any], Any]] = None, *, pri: int = 0) -> Any:
    """Copy the regular file src to dst, as IO::AIO's aio_copy: dst is created
    with mode 0200, gets the data (inside the kernel: one copy_data request),
    then src's owner (where permitted), mode and times (the owner first: a
    chown clears the set-user-ID bit); if anything fails it
    is removed.  A source that is not a regular file (a directory...) fails
    with its OSError and leaves nothing behind.  Returns the group."""
    c = _group(callback, pri)
    _copy_into(c, src, dst, pri)
    return c.grp


def _copy_into(c: _Composite, src: Any, dst: Any, pri: int, after: Optional[Callable[[], None]] = None) -> None:
    state: dict = {}
    grp = c.grp

    def finish(exc: Optional[BaseException]) -> None:
        fds = [state[k] for k in ("in", "out") if k in state]
        for fd in fds:
            grp.add(_engine.aio_close(fd, None, pri=pri))
        if exc is not None:
            _fail(c, exc)
            if "out" in state:
                grp.add(_engine.aio_unlink(dst, None, pri=pri))
        elif after is not None:
            after()

    def copied(res: Any) -> None:
        finish(res if isinstance(res, BaseException) else None)

    def out_opened(fd: Any) -> None:
        if isinstance(fd, BaseException):
            return finish(fd)
        state["out"] = fd
        grp.add(_engine.copy_data(state["in"], fd, None, _META, copied, pri=pri))

    def in_opened(res: Any) -> None:
        if isinstance(res, BaseException):
            return finish(res)
        fd, st = res
        state["in"] = fd
        if not _stat.S_ISREG(st.st_mode):
            err = _errno.EISDIR if _stat.S_ISDIR(st.st_mode) else _errno.EINVAL
            exc = (IsADirectoryError if err == _errno.EISDIR else OSError)(err, _os.strerror(err), src)
            return finish(exc)
        grp.add(_engine.open(dst, _os.O_WRONLY | _os.O_CREAT | _os.O_TRUNC, 0o200, None,
                             out_opened, pri=pri))

    grp.add(_engine.open_stat(src, _os.O_RDONLY | _os.O_NONBLOCK | _os.O_NOCTTY, 0, None,
                              in_opened, pri=pri))


def aio_move(src: Any, dst: Any, callback: Optional[Callable[[Any], Any]] = None, *, pri: int = 0) -> Any:
    """rename(2) src to dst; across filesystems (EXDEV), aio_copy then unlink
    src, as IO::AIO's aio_move.  Returns the group."""
    c = _group(callback, pri)
    grp = c.grp

    def unlink_src() -> None:
        def gone(res: Any) -> None:
            if isinstance(res, BaseException):
                _fail(c, res)
        grp.add(_engine.aio_unlink(src, gone, pri=pri))

    def renamed(res: Any) -> None:
        if isinstance(res, OSError) and res.errno == _errno.EXDEV:
            _copy_into(c, src, dst, pri, unlink_src)
        elif isinstance(res, BaseException):
            _fail(c, res)

    grp.add(_engine.aio_rename(src, dst, renamed, pri=pri))
    return grp


def aio_rmtree(path: Any, callback: Optional[Callable[[Any], Any]] = None, *, pri: int = 0) -> Any:
    """Remove path and everything under it, as IO::AIO's aio_rmtree: each
    directory is listed, its entries removed in parallel (symlinks are
    removed, never followed: the listing's own d_type decides), then it is
    rmdir'ed.  A path that is not a directory is unlinked.  Returns the
    group."""
    c = _group(callback, pri)

    def check(res: Any) -> None:
        if isinstance(res, BaseException):
            _fail(c, res)

    def looked(st: Any) -> None:
        if isinstance(st, BaseException):
            return _fail(c, st)
        if _stat.S_ISDIR(st.st_mode):
            _remove_dir(c, c.grp, path, pri, [])
        else:
            c.grp.add(_engine.aio_unlink(path, check, pri=pri))

    c.grp.add(_engine.aio_lstat(path, looked, pri=pri))
    return c.grp


def _remove_dir(c: _Composite, into: Any, path: Any, pri: int, parent_failed: list) -> None:
    """Add to the group into: a group that empties path, and whose callback
    then adds path's rmdir to into (unless something under it stayed)."""
    sep = b"/" if isinstance(path, bytes) else "/"
    failed: list = []

    def check(res: Any) -> None:
        if isinstance(res, BaseException):
            failed.append(res)
            parent_failed.append(res)
            _fail(c, res)

    def emptied(_: Any) -> None:
        if not failed:
            into.add(_engine.aio_rmdir(path, check, pri=pri))

    sub = _engine.aio_group(emptied)

    def listed(entries: Any) -> None:
        if isinstance(entries, BaseException):
            return check(entries)
        for name, dtype, _target, _ino in entries:
            child = path + sep + name
            if dtype == DT_DIR:
                _remove_dir(c, sub, child, pri, failed)
            else:
                sub.add(_engine.aio_unlink(child, check, pri=pri))

    sub.add(_engine.scandir_at(path, None, 0, listed, pri=pri))
    into.add(sub)
