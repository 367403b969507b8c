"""IO::AIO's composite requests on the callback API: aio_copy, aio_move,
aio_rmtree.

Each is a group (linuxaio.aio_group) whose requests are added as the work
goes on, from the callbacks of the ones before: cancel() on the group
cancels all of it.  The callback gets 0, or the OSError of the first
failure.
"""
from __future__ import annotations

import errno as _errno
from typing import Any, Callable, Optional

from . import _engine

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
    with mode 0200, gets the data (inside the kernel), then src's owner
    (where permitted), mode and times (the owner first: a chown clears the
    set-user-ID bit); if anything fails it is removed.  A source that is
    not a regular file (a directory...) fails with its OSError and leaves
    nothing behind.  Returns the group.

    All of it is ONE engine request (copy_file, src/engine/ops_copy.c): its
    fds never leave the worker.  So a cancel cannot leak them, nor leave a
    partial destination: a copy not yet started never starts (nothing is
    created), one running finishes in its worker (a syscall cannot be
    stopped half-way) and its whole copy stays, without a callback."""
    c = _group(callback, pri)
    _copy_into(c, src, dst, pri)
    return c.grp


def _copy_into(c: _Composite, src: Any, dst: Any, pri: int, after: Optional[Callable[[], None]] = None) -> None:
    def copied(res: Any) -> None:
        if isinstance(res, BaseException):
            _fail(c, res)
        elif after is not None:
            after()

    c.grp.add(_engine.copy_file(src, dst, _META, copied, pri=pri))


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
    """Remove path and everything under it, as IO::AIO's aio_rmtree, but
    safe against a symlink swapped in mid-way as shutil.rmtree is: each
    directory is opened (O_NOFOLLOW) relative to its parent's fd and
    checked against its listing, its entries removed in parallel with
    unlinkat/rmdir on that fd (linuxaio._tree.removal: the algorithm the
    awaitable rmtree runs too).  A path that is not a directory (a symlink
    included) is unlinked.  Every failure is passed over and the removal
    goes on; the callback gets the first.  Returns the group."""
    from . import _tree
    c = _group(callback, pri)
    _drive(c, _tree.removal(path, None, lambda func, p, exc: _fail(c, exc), unlink_other=True), pri)
    return c.grp


def _drive(c: _Composite, steps: Any, pri: int) -> None:
    """Run a generator of batches (linuxaio._tree.removal's steps) on the
    callback API: each batch is one request added to c's group, the next
    one sent from its callback."""
    _Driver(c.grp, steps, pri).resume(None)


class _Driver:
    """Only the requests in flight hold it (and so the generator; no
    cycle: the collector is not needed): when a cancelled group's last
    request is back, it goes, and the generator's cleanup closes the
    directories it held."""

    __slots__ = ("grp", "steps", "pri")

    def __init__(self, grp: Any, steps: Any, pri: int) -> None:
        self.grp, self.steps, self.pri = grp, steps, pri

    def resume(self, results: Any) -> None:
        while True:
            try:
                name, args, _to_end, _undo = self.steps.send(results)
            except StopIteration:
                return
            if not args:
                results = []
                continue
            if len(args) == 1:     # one request costs less than a batch of one (and names its error)
                req = getattr(_engine, name)(*args[0], self.resume_one, pri=self.pri)
            else:
                req = _engine.submit_many(name, args, self.resume, pri=self.pri)
            self.grp.add(req)
            return

    def resume_one(self, result: Any) -> None:
        self.resume([result])
