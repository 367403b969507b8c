"""Whole-tree work on the engine: what linuxaio.shutil, the walks, the
callback composites and the command-line tools (scan, copy, rm) share.

Everything here runs as batches (submit_many): a level of a tree, or a
chunk of its files, is one engine call whose requests the workers serve
in parallel while Python waits once.  Under trio, where a request starts
only when awaited, that is still where the parallelism comes from.

The data of a file moves by ONE request (the engine's copy_data row,
src/engine/ops_copy.c): reflink, else copy_file_range, else sendfile,
else read/write, with the metadata applied by the same worker.
"""
from __future__ import annotations

import errno as _errno
import os as _os
import stat as _stat
import sys as _sys
TYPE_CHECKING = False
if TYPE_CHECKING:     # typing costs ms at start-up: the CLI tools avoid it
    from typing import Any, Callable, Iterable, Optional

from . import _engine
from ._loop import run as _run
from ._loop import run_to_end as _run_to_end

DT_UNKNOWN, DT_FIFO, DT_DIR, DT_REG, DT_LNK = 0, 1, 4, 8, 10
CHUNK = 512                  # files copied (or entries removed) per wave of batches
NOFOLLOW = _engine.AT_SYMLINK_NOFOLLOW
O_DIR = _os.O_RDONLY | _os.O_DIRECTORY | _os.O_NOFOLLOW | _os.O_NONBLOCK
# open a file to copy: never block on a FIFO (checked after the open)
O_SRC = _os.O_RDONLY | _os.O_NONBLOCK | _os.O_NOCTTY

# copy_data's flags (src/engine/ops_copy.c)
META_MODE, META_OWNER, META_TIMES, NO_CLONE = 1, 2, 4, 8
# the extended attributes too, as shutil.copystat (EACCES passed over as
# well from 3.12 on, as shutil does)
META_XATTRS = 16 | (32 if _sys.version_info >= (3, 12) else 0)


def xattr_flags(follow_symlinks: bool) -> int:
    """copy_xattrs' flags (shutil.copystat's follow_symlinks)."""
    return (META_XATTRS & ~16) | (0 if follow_symlinks else NOFOLLOW)


HOW = {0: "none", 1: "reflink", 2: "copy_file_range", 3: "sendfile", 4: "read/write"}


async def batch(name: str, args: list, to_end: bool = False,
                undo_each: Callable[[Any], None] | None = None) -> list:
    """One engine call per CHUNK*8 requests; results in order, an exception
    in place of a failed one.  to_end: a cancellation waits for the
    requests to finish (they use fds the caller closes when cancelled);
    undo_each(result) then runs for each that succeeded (an open's fd)."""
    if not args:
        return []
    if len(args) == 1:     # one request costs less than a batch of one
        undo = None if undo_each is None else undo_each
        try:
            if to_end:
                return [await _run_to_end(getattr(_engine, name), *args[0], undo=undo)]
            return [await _run(getattr(_engine, name), *args[0])]
        except OSError as exc:
            return [exc]
    undo_all = None if undo_each is None else (
        lambda results: [undo_each(r) for r in results if not isinstance(r, BaseException)])
    step = CHUNK * 8
    out: list = []
    for k in range(0, len(args), step):
        if to_end:
            out += await _run_to_end(_engine.submit_many, name, args[k:k + step], undo=undo_all)
        else:
            out += await _run(_engine.submit_many, name, args[k:k + step])
    return out


def _close_opened(result: Any) -> None:
    """undo_each of a batch of open_stat: close the fd nobody will see."""
    try:
        _os.close(result[0])
    except OSError:
        pass


def named(exc: BaseException, filename: Any, filename2: Any = None) -> BaseException:
    """A batch's OSError carries no filename: the one os would have raised."""
    if isinstance(exc, OSError) and exc.filename is None and exc.errno is not None:
        new = type(exc)(exc.errno, exc.strerror, filename) if filename2 is None \
            else type(exc)(exc.errno, exc.strerror, filename, None, filename2)
        return new
    return exc


def renamed(exc: BaseException, filename: Any) -> BaseException:
    """The OSError of a request made relative to a directory handle ("." or
    a bare name), named by the path the caller knows it by."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return type(exc)(exc.errno, exc.strerror, filename)
    return exc


def join(parent: Any, name: Any) -> Any:
    if isinstance(parent, bytes):
        return parent + name if parent.endswith(b"/") else parent + b"/" + name
    return parent + name if parent.endswith("/") else parent + "/" + name


async def close_all(fds: Iterable[int]) -> None:
    """Close them all, even if the caller is cancelled meanwhile: a close
    cancelled before it ran would leak an fd its caller no longer tracks."""
    fds = [(fd,) for fd in fds if isinstance(fd, int) and fd >= 0]
    await batch("close", fds, True)


async def list_dirs(paths: list) -> list:
    """The engine's scandir of each path (types resolved): a list of
    (name, d_type, target type, inode) tuples, or the OSError (named)."""
    res = await batch("scandir", [(p,) for p in paths])
    return [named(r, p) for p, r in zip(paths, res)]


class FileCopy:
    """One file to copy: src -> dst; after copy_files, error (None or the
    OSError), nbytes and how."""

    __slots__ = ("src", "dst", "error", "nbytes", "how", "st", "tag")

    def __init__(self, src: Any, dst: Any, tag: Any = None) -> None:
        self.src, self.dst, self.tag = src, dst, tag
        self.error: Optional[BaseException] = None
        self.nbytes = 0
        self.how = 0
        self.st: Optional[_os.stat_result] = None


def spread(jobs: list) -> list:
    """The jobs round-robin over their destination directories: creating
    files in one directory serializes on its lock (i_rwsem), so the workers
    of a wave are better off each in a directory of its own."""
    if len(jobs) < 2:
        return jobs
    by_dir: dict = {}
    for j in jobs:
        d = _os.fspath(j.dst)
        cut = d.rfind(b"/" if isinstance(d, bytes) else "/")
        by_dir.setdefault(d[:cut], []).append(j)
    if len(by_dir) < 2:
        return jobs
    out = []
    lists = list(by_dir.values())
    for i in range(max(len(x) for x in lists)):
        for x in lists:
            if i < len(x):
                out.append(x[i])
    return out


def fifo_error(path: Any) -> OSError:
    from shutil import SpecialFileError
    return SpecialFileError("`%s` is a named pipe" % (path.decode("utf-8", "surrogateescape")
                                                       if isinstance(path, bytes) else path))


async def copy_files(jobs: list, meta: int, *, xattrs: bool = False, exclusive: bool = False,
                     mode: int = 0o666, done: Optional[Callable[[FileCopy], None]] = None) -> None:
    """Copy every job's data (and the metadata meta asks for), CHUNK files
    per wave of four batches: open the sources, open the destinations,
    copy_data, close.  exclusive: the destination must not exist (the CLI's
    temporary names, IO::AIO's aio_copy).  Each job's error is kept in it."""
    oflags = _os.O_WRONLY | _os.O_CREAT | (_os.O_EXCL if exclusive else _os.O_TRUNC)
    jobs = spread(jobs)
    for k in range(0, len(jobs), CHUNK):
        chunk = jobs[k:k + CHUNK]
        held: list = []          # fds of this wave, closed even if it is cancelled
        try:
            await _copy_wave(chunk, meta, xattrs, oflags, mode, held)
        except BaseException:
            # cancelled (or worse): no request uses them any more (copy_data
            # is awaited to its end), so they are closed here and now
            for fd in held:
                try:
                    _os.close(fd)
                except OSError:
                    pass
            raise
        await close_all(held)
        if done is not None:
            for j in chunk:
                done(j)


async def _copy_wave(chunk: list, meta: int, xattrs: bool, oflags: int, mode: int, held: list) -> None:
    opened = await batch("open_stat", [(j.src, O_SRC, 0, None) for j in chunk])
    todo = []
    for j, res in zip(chunk, opened):
        if isinstance(res, BaseException):
            j.error = named(res, j.src)
            continue
        fd, st = res
        held.append(fd)
        j.st = st
        if _stat.S_ISFIFO(st.st_mode):
            j.error = fifo_error(j.src)
        elif _stat.S_ISDIR(st.st_mode):
            j.error = IsADirectoryError(_errno.EISDIR, _os.strerror(_errno.EISDIR), j.src)
        else:
            todo.append((j, fd))
    outs = await batch("open", [(j.dst, oflags, mode, None) for j, _ in todo])
    pairs = []
    for (j, fd), res in zip(todo, outs):
        if isinstance(res, BaseException):
            j.error = named(res, j.dst)
        else:
            held.append(res)
            pairs.append((j, fd, res))
    if xattrs:      # by the same worker, after the data (ops_copy.c)
        meta |= META_XATTRS
    args = [(fd, out, None, meta) for _, fd, out in pairs]
    if len(args) == 1:
        try:
            results = [await _run_to_end(_engine.copy_data, *args[0])]
        except OSError as exc:
            results = [exc]
    elif args:
        results = await _run_to_end(_engine.submit_many, "copy_data", args)
    else:
        results = []
    for (j, _, _), res in zip(pairs, results):
        if isinstance(res, BaseException):
            j.error = j.error or named(res, j.dst)
        else:
            j.nbytes, j.how = res


# ---- rmtree: parallel, on directory handles ----

class _Dir:
    __slots__ = ("fd", "path", "parent", "name", "pending", "listed", "failed")

    def __init__(self, fd: int, path: Any, parent: Optional["_Dir"], name: Any) -> None:
        self.fd, self.path, self.parent, self.name = fd, path, parent, name
        self.pending = 0          # subdirectories not yet removed
        self.listed = False
        self.failed = False       # something under it stays: its rmdir will fail


if TYPE_CHECKING:
    OnExc = Callable[[Any, Any, BaseException], None]
PY313 = _sys.version_info >= (3, 13)


def _symlink_error(path: Any) -> OSError:
    exc = OSError("Cannot call rmtree on a symbolic link")
    if PY313:          # 3.13's shutil names the path (so its message is "[Errno None] None: path")
        exc.filename = path
    return exc


async def remove_tree(path: Any, dir_fd: Optional[int], onexc: OnExc,
                      progress: Optional[Callable[[int], None]] = None) -> None:
    """Remove path and everything under it (see removal), awaited: each
    batch of requests the removal yields is awaited here.  A cancellation
    closes the generator, whose cleanup closes the directories it holds."""
    steps = removal(path, dir_fd, onexc, progress)
    try:
        results = None
        while True:
            try:
                name, args, to_end, undo = steps.send(results)
            except StopIteration:
                return
            results = await batch(name, args, to_end, undo)
    finally:
        steps.close()


# A step of a removal: (row name, argument tuples, to_end, undo_each), as
# batch() takes them; the driver sends back the list of results.
Steps = "Generator[tuple, Optional[list], None]"


def removal(path: Any, dir_fd: Optional[int], onexc: OnExc,
            progress: Optional[Callable[[int], None]] = None, unlink_other: bool = False) -> Steps:
    """Remove path and everything under it, as shutil.rmtree's fd-based
    variant does: each directory is opened with O_NOFOLLOW|O_DIRECTORY
    relative to its parent's fd and checked against what its listing said
    (st_dev/st_ino), so a symlink swapped in mid-way is never followed;
    every unlinkat/rmdir is relative to the parent's handle.  Entries go
    in parallel: a wave of directories is listed by one batch, their files
    unlinked by another, their subdirectories opened by a third.

    The algorithm is this one generator of batches, in one place for both
    faces: remove_tree awaits each batch (shutil.rmtree, Path.rmtree, the
    rm tool), linuxaio.aio_rmtree submits each from the last one's callback.
    The directories it holds open are closed in its cleanup, which also
    runs when it is closed half-way: a cancelled await closes it, and a
    cancelled aio_rmtree's generator is let go (and so closed) once its
    last request is back, when no worker can still use one of them.

    onexc(func, path, exc) gets each failure (func: os.open, os.lstat,
    os.scandir, os.unlink, os.rmdir, os.path.islink, as shutil passes
    them); it may raise to stop.  unlink_other: a path that is not a
    directory (a symlink too) is unlinked instead (IO::AIO's aio_rmtree)."""
    live: set = set()        # fds of the directories open
    try:
        yield from _removal(path, dir_fd, onexc, progress, unlink_other, live)
    finally:
        _close_now(live)


def _close_now(fds: set) -> None:
    """Close directory fds here, in the caller's thread: closing a
    directory never blocks (nothing to write back), and a close request
    could itself be cancelled, leaking the fd."""
    for fd in list(fds):
        fds.discard(fd)
        try:
            _os.close(fd)
        except OSError:
            pass


def _removal(path: Any, dir_fd: Optional[int], onexc: OnExc, progress: Any, unlink_other: bool,
             live: set) -> Steps:
    (orig,) = yield ("stat", [(path, dir_fd, NOFOLLOW)], False, None)
    if isinstance(orig, BaseException):
        onexc(_os.lstat, path, orig)
        return
    if unlink_other and not _stat.S_ISDIR(orig.st_mode):
        (r,) = yield ("unlink", [(path, dir_fd)], False, None)
        if isinstance(r, BaseException):
            onexc(_os.unlink, path, r)
        return
    if _stat.S_ISLNK(orig.st_mode):
        onexc(_os.path.islink, path, _symlink_error(path))
        return
    (r,) = yield ("open_stat", [(path, O_DIR & ~_os.O_DIRECTORY, 0, dir_fd)], False, None)
    if isinstance(r, BaseException):
        onexc(_os.open, path, r)
        return
    fd, st = r
    live.add(fd)
    if not _os.path.samestat(orig, st):
        _close_now({fd})
        live.discard(fd)
        onexc(_os.path.islink, path, _symlink_error(path))
        return
    yield from _remove_all(_Dir(fd, path, None, None), onexc, progress, live)
    (r,) = yield ("rmdir", [(path, dir_fd)], False, None)
    if isinstance(r, BaseException):
        onexc(_os.rmdir, path, r)


def _remove_all(top: _Dir, onexc: OnExc, progress: Any, live: set) -> Steps:
    stack = [top]           # opened, not yet listed: depth first keeps few fds open
    removed = 0
    while stack:
        wave = stack[-CHUNK // 8:]
        del stack[-CHUNK // 8:]
        lists = yield ("scandir_at", [(".", d.fd, 0) for d in wave], True, None)
        unlinks: list = []        # (dir, name)
        subdirs: list = []        # (dir, name, d_ino)
        for d, res in zip(wave, lists):
            d.listed = True
            if isinstance(res, BaseException):
                d.failed = True
                onexc(_os.scandir, d.path, renamed(res, d.path))
                continue
            for name, dtype, _target, ino in res:
                if dtype == DT_UNKNOWN:
                    (st,) = yield ("stat", [(name, d.fd, NOFOLLOW)], True, None)
                    if isinstance(st, BaseException):
                        dtype = DT_REG     # the unlink will tell
                    else:
                        dtype = DT_DIR if _stat.S_ISDIR(st.st_mode) else DT_REG
                if dtype == DT_DIR:
                    subdirs.append((d, name, ino))
                else:
                    unlinks.append((d, name))
        res = yield ("unlink", [(name, d.fd) for d, name in unlinks], True, None)
        for (d, name), r in zip(unlinks, res):
            if isinstance(r, FileNotFoundError) and PY313:
                continue       # gone meanwhile: 3.13's shutil passes over it
            if isinstance(r, BaseException):
                d.failed = True
                full = join(d.path, name)
                onexc(_os.unlink, full, renamed(r, full))
            else:
                removed += 1
        opened = yield ("open_stat", [(name, O_DIR, 0, d.fd) for d, name, _ in subdirs], True,
                        _close_opened)
        # every fd tracked before anything else: a cancellation at the next
        # step must still close them all
        live.update(r[0] for r in opened if not isinstance(r, BaseException))
        for (d, name, ino), r in zip(subdirs, opened):
            full = join(d.path, name)
            if isinstance(r, BaseException):
                d.failed = True
                if r.errno in (_errno.ELOOP, _errno.ENOTDIR):
                    # it became a symlink (or a file) since it was listed:
                    # remove the name, never what it points to
                    (u,) = yield ("unlink", [(name, d.fd)], True, None)
                    if not isinstance(u, BaseException):
                        d.failed = False
                        continue
                onexc(_os.open, full, renamed(r, full))
                continue
            fd, st = r
            if st.st_ino != ino:
                # a mount point's listing shows the inode under it: the
                # name's own lstat decides, as shutil's samestat does
                (lst,) = yield ("stat", [(name, d.fd, NOFOLLOW)], True, None)
                if isinstance(lst, BaseException) or not _os.path.samestat(lst, st):
                    _close_now({fd})
                    live.discard(fd)
                    d.failed = True
                    onexc(_os.path.islink, full, _symlink_error(full))
                    continue
            d.pending += 1
            stack.append(_Dir(fd, full, d, name))
        # directories now empty (listed, no subdirectory left): rmdir them
        # relative to their parent's handle, then their parents in turn
        ready = [d for d in wave if d.pending == 0]
        while ready:
            kids = [d for d in ready if d.parent is not None]
            for d in ready:
                _close_now({d.fd})
                live.discard(d.fd)
            res = yield ("rmdir", [(d.name, d.parent.fd) for d in kids], True, None)
            nxt = []
            for d, r in zip(kids, res):
                p = d.parent
                if isinstance(r, BaseException):
                    p.failed = True
                    onexc(_os.rmdir, d.path, renamed(r, d.path))
                else:
                    removed += 1
                p.pending -= 1
                if p.pending == 0 and p.listed:
                    nxt.append(p)
            ready = nxt
        if progress is not None:
            progress(removed)
