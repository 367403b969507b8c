"""Awaitable twins of ``os``: same names, arguments, results and exceptions.

Each call is one engine request, awaited under asyncio, uvloop or trio.
A cancelled call cancels its request (see ``linuxaio._loop``): a request not
yet started never runs; an ``open`` that completed anyway has its fd closed.
A cancelled ``write``/``pwrite``/``unlink`` may have happened already: the
cancellation only stops the caller from waiting for it.
"""
from __future__ import annotations

import math as _math
import os as _os
import stat as _stat
import sys as _sys
from errno import ELOOP as _ELOOP, ENOTDIR as _ENOTDIR
from typing import Any, Iterable, Optional, Sequence

from . import _engine
from ._loop import run as _run
from ._loop import submit_now as _submit_now

__all__ = [
    "open", "close", "read", "write", "pread", "pwrite", "readv", "preadv", "pwritev",
    "readinto", "preadinto", "stat", "lstat", "fstat", "unlink", "remove",
    "lseek", "ftruncate", "truncate", "fsync", "fdatasync",
    "mkdir", "rmdir", "rename", "replace", "chmod", "utime", "readlink", "symlink", "link",
    "realpath", "listdir", "scandir", "DirEntry", "pread_many", "stat_many",
    "statvfs", "fstatvfs", "chown", "lchown", "fchown", "fchmod", "access", "mknod", "mkfifo",
    "rename2", "getxattr", "setxattr", "listxattr", "removexattr", "wd", "WorkingDir",
    "walk", "fwalk", "makedirs", "removedirs", "renames", "copy_data", "scandir_at",
    "scandir_stat", "scandir_totals", "copy_xattrs", "copy_file",
]

_NOFOLLOW = _engine.AT_SYMLINK_NOFOLLOW


async def open(path: Any, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
    return await _run(_engine.open, path, flags, mode & 0o7777, dir_fd)


async def close(fd: int) -> None:
    await _run(_engine.close, fd)


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


async def lseek(fd: int, position: int, whence: int, /) -> int:
    return await _run(_engine.lseek, fd, position, whence)


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
    return await _run(_engine.fstat, fd)


# The hot twins that only forward: called with their positional arguments
# alone, a C runner submits at once and returns the request, which is the
# awaitable (src/engine/runner.c); other forms of call go to the async def.
# Under asyncio only reads and stats: submitted at the call, a cancelled
# task's request may have run, which for these changes nothing.  open has a
# runner for trio alone (at_call False), whose coroutine starts nothing
# before its first step; under asyncio it calls the async def.  (close
# returns None, not the row's 0, and has no inline try: it stays as is.)
pread = _engine._bind(pread, _engine.pread, 3)
preadinto = _engine._bind(preadinto, _engine.preadinto, 3)
fstat = _engine._bind(fstat, _engine.fstat, 1)
stat = _engine._bind(stat, _engine.stat, 1, (None, 0))
lstat = _engine._bind(lstat, _engine.stat, 1, (None, _NOFOLLOW))
open = _engine._bind(open, _engine.open, 2, (0o777, None), False)


async def unlink(path: Any, *, dir_fd: int | None = None) -> None:
    await _run(_engine.unlink, path, dir_fd)


remove = unlink


async def ftruncate(fd: int, length: int) -> None:
    await _run(_engine.ftruncate, fd, length)


async def truncate(path: Any, length: int) -> None:
    await _run(_engine.truncate, path, length)


async def fsync(fd: Any) -> None:
    await _run(_engine.fsync, fd)


async def fdatasync(fd: Any) -> None:
    await _run(_engine.fdatasync, fd)


async def rmdir(path: Any, *, dir_fd: int | None = None) -> None:
    await _run(_engine.rmdir, path, dir_fd)


async def mkdir(path: Any, mode: int = 0o777, *, dir_fd: int | None = None) -> None:
    await _run(_engine.mkdir, path, mode & 0o7777, dir_fd)


async def rename(src: Any, dst: Any, *, src_dir_fd: int | None = None,
                 dst_dir_fd: int | None = None) -> None:
    await _run(_engine.rename, src, dst, src_dir_fd, dst_dir_fd)


replace = rename   # rename(2) replaces an existing dst, as os.replace does on POSIX


async def chmod(path: Any, mode: int, *, dir_fd: int | None = None,
                follow_symlinks: bool = True) -> None:
    if not follow_symlinks:   # as os.chmod on Linux: fchmodat has no working flag
        raise NotImplementedError("chmod: follow_symlinks unavailable on this platform")
    await _run(_engine.chmod, path, mode & 0o7777, dir_fd, 0)


async def utime(path: Any, times: tuple[float, float] | None = None, *,
                ns: tuple[int, int] | None = None, dir_fd: int | None = None,
                follow_symlinks: bool = True) -> None:
    if times is not None and ns is not None:
        raise ValueError("utime: you may specify either 'times' or 'ns' but not both")
    if times is not None:
        if not isinstance(times, tuple) or len(times) != 2:
            raise TypeError("utime: 'times' must be either a tuple of two ints or None")
        ns = (_seconds_to_ns(times[0]), _seconds_to_ns(times[1]))
    elif ns is not None and (not isinstance(ns, tuple) or len(ns) != 2):
        raise TypeError("utime: 'ns' must be a tuple of two ints")
    await _run(_engine.utime, path, ns, dir_fd, 0 if follow_symlinks else _NOFOLLOW)


def _seconds_to_ns(t: float) -> int:
    # os.utime rounds a float time toward minus infinity, to the nanosecond
    if isinstance(t, int):
        return t * 1_000_000_000
    return int(_math.floor(t * 1e9))


async def readlink(path: Any, *, dir_fd: int | None = None) -> Any:
    return await _run(_engine.readlink, path, dir_fd)


async def symlink(src: Any, dst: Any, target_is_directory: bool = False, *,
                  dir_fd: int | None = None) -> None:
    await _run(_engine.symlink, src, dst, dir_fd)


async def link(src: Any, dst: Any, *, src_dir_fd: int | None = None,
               dst_dir_fd: int | None = None, follow_symlinks: bool = True) -> None:
    await _run(_engine.link, src, dst, src_dir_fd, dst_dir_fd,
               _AT_SYMLINK_FOLLOW if follow_symlinks else 0)


async def realpath(path: Any) -> Any:
    """The canonical path (realpath(3)): like os.path.realpath(path, strict=True)."""
    return await _run(_engine.realpath, path)


async def listdir(path: Any = ".") -> list[Any]:
    """The names in a directory, in directory order (os.listdir's are too)."""
    return await _run(_engine.aio_readdir, path)


async def scandir(path: Any = ".") -> list["DirEntry"]:
    """The entries of a directory, read by getdents64(2) in one request.

    Returns a list (not an iterator: the whole directory is read at once).
    Every entry's type is known when it arrives, so is_dir(), is_file() and
    is_symlink() never make a syscall."""
    wd = None
    if isinstance(path, tuple) and len(path) == 2:   # (wd, relpath): entries relative to wd
        wd, prefix = path[0], _os.fspath(path[1])
    else:
        prefix = _os.fspath(path)
    if isinstance(prefix, bytes):
        prefix = prefix if prefix.endswith(b"/") else prefix + b"/"
    else:
        prefix = prefix if prefix.endswith("/") else prefix + "/"
    return [DirEntry(prefix + name, name, t, target, ino, wd)
            for name, t, target, ino in await _run(_engine.scandir, path)]


_DT_DIR, _DT_REG, _DT_LNK = 4, 8, 10
_AT_SYMLINK_FOLLOW = 0x400


class DirEntry:
    """Like os.DirEntry: name, path, inode(), is_dir(), is_file(), is_symlink(),
    and an awaitable stat().  Listed through a (wd, relpath), its path is
    relative to that WorkingDir, which its stat() uses."""

    __slots__ = ("path", "name", "_type", "_target", "_ino", "_stat", "_lstat", "_wd")

    def __init__(self, path: Any, name: Any, d_type: int, target: int, ino: int,
                 wd: Any = None) -> None:
        self.path, self.name = path, name
        self._type, self._target, self._ino = d_type, target, ino
        self._stat = self._lstat = None
        self._wd = wd

    def __fspath__(self) -> Any:
        return self.path

    def __repr__(self) -> str:
        return f"<linuxaio.os.DirEntry {self.name!r}>"

    def inode(self) -> int:
        return self._ino

    def is_symlink(self) -> bool:
        return self._type == _DT_LNK

    def is_dir(self, *, follow_symlinks: bool = True) -> bool:
        return (self._target if follow_symlinks else self._type) == _DT_DIR

    def is_file(self, *, follow_symlinks: bool = True) -> bool:
        return (self._target if follow_symlinks else self._type) == _DT_REG

    async def stat(self, *, follow_symlinks: bool = True) -> _os.stat_result:
        """Cached, as os.DirEntry.stat."""
        where = self.path if self._wd is None else (self._wd, self.path)
        if follow_symlinks:
            if self._stat is None:
                self._stat = await stat(where)
            return self._stat
        if self._lstat is None:
            self._lstat = await lstat(where)
        return self._lstat


# ---- IO::AIO's rest: names, file systems, xattrs, working directories ----

WorkingDir = _engine.WorkingDir
_AT_EACCESS = 0x200
_S_IFIFO = 0o010000


async def wd(path: Any) -> "_engine.WorkingDir":
    """A working-directory handle (aio_wd): paths given as (wd, relpath) are
    resolved against the directory it opened, wherever it is moved."""
    return await _run(_engine.aio_wd, path)


async def statvfs(path: Any) -> _os.statvfs_result:
    return await _run(_engine.statvfs, path)


async def fstatvfs(fd: int, /) -> _os.statvfs_result:
    return await _run(_engine.fstatvfs, fd)


def _check_ids(name: str, uid: Any, gid: Any) -> None:
    for what, v in (("uid", uid), ("gid", gid)):
        if not isinstance(v, int):   # os.chown takes no None (aio_chown does)
            raise TypeError(f"{name}: {what} should be integer, not {type(v).__name__}")


async def chown(path: Any, uid: int, gid: int, *, dir_fd: int | None = None,
                follow_symlinks: bool = True) -> None:
    _check_ids("chown", uid, gid)
    if isinstance(path, int):
        if dir_fd is not None:
            raise ValueError("chown: can't specify both dir_fd and fd")
        if not follow_symlinks:
            raise ValueError("chown: cannot use fd and follow_symlinks together")
    await _run(_engine.chown, path, uid, gid, dir_fd, 0 if follow_symlinks else _NOFOLLOW)


async def lchown(path: Any, uid: int, gid: int) -> None:
    await chown(path, uid, gid, follow_symlinks=False)


async def fchown(fd: int, uid: int, gid: int) -> None:
    _check_ids("fchown", uid, gid)
    await _run(_engine.fchown, fd, uid, gid)


async def fchmod(fd: int, mode: int) -> None:
    await _run(_engine.fchmod, fd, mode & 0o7777)


async def access(path: Any, mode: int, *, dir_fd: int | None = None,
                 effective_ids: bool = False, follow_symlinks: bool = True) -> bool:
    """True if the access is allowed (faccessat2(2)); False on any failure, as os.access."""
    if not isinstance(mode, int):
        raise TypeError(f"access: mode should be integer, not {type(mode).__name__}")
    if not 0 <= mode <= 0o7777:
        return False   # the kernel's EINVAL, which os.access reports as False
    flags = (_AT_EACCESS if effective_ids else 0) | (0 if follow_symlinks else _NOFOLLOW)
    return await _run(_engine.access, path, mode, dir_fd, flags)


async def mknod(path: Any, mode: int = 0o600, device: int = 0, *,
                dir_fd: int | None = None) -> None:
    try:
        await _run(_engine.mknod, path, mode, device, dir_fd)
    except OSError as e:   # os.mknod's error names no file
        e.filename = None
        raise


async def mkfifo(path: Any, mode: int = 0o666, *, dir_fd: int | None = None) -> None:
    await mknod(path, (mode & 0o7777) | _S_IFIFO, 0, dir_fd=dir_fd)


async def rename2(src: Any, dst: Any, flags: int = 0, *, src_dir_fd: int | None = None,
                  dst_dir_fd: int | None = None) -> None:
    """renameat2(2): flags RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT (linuxaio's)."""
    await _run(_engine.rename2, src, dst, src_dir_fd, dst_dir_fd, flags)


def _xattr_follow(name: str, path: Any, follow_symlinks: bool) -> int:
    if not follow_symlinks and isinstance(path, int):
        raise ValueError(f"{name}: cannot use fd and follow_symlinks together")
    return 0 if follow_symlinks else _NOFOLLOW


async def getxattr(path: Any, attribute: Any, *, follow_symlinks: bool = True) -> bytes:
    flags = _xattr_follow("getxattr", path, follow_symlinks)
    return await _run(_engine.getxattr, path, _os.fspath(attribute), flags)


async def setxattr(path: Any, attribute: Any, value: Any, flags: int = 0, *,
                   follow_symlinks: bool = True) -> None:
    follow = _xattr_follow("setxattr", path, follow_symlinks)
    if not isinstance(flags, int):
        raise TypeError(f"setxattr: flags should be integer, not {type(flags).__name__}")
    await _run(_engine.setxattr, path, _os.fspath(attribute), value, flags | follow)


async def listxattr(path: Any = None, *, follow_symlinks: bool = True) -> list[str]:
    flags = _xattr_follow("listxattr", path, follow_symlinks)
    return await _run(_engine.listxattr, "." if path is None else path, flags)


async def removexattr(path: Any, attribute: Any, *, follow_symlinks: bool = True) -> None:
    flags = _xattr_follow("removexattr", path, follow_symlinks)
    await _run(_engine.removexattr, path, _os.fspath(attribute), flags)


# ---- data, sync (issue 14): sendfile, copy_file_range, fallocate, fadvise, sync ----

__all__ += ["sendfile", "copy_file_range", "posix_fallocate", "fallocate", "posix_fadvise", "sync"]


async def sendfile(out_fd: int, in_fd: int, offset: int | None, count: int) -> int:
    """sendfile(2), as os.sendfile on Linux: no read/write copy when it refuses
    (aio_sendfile makes one)."""
    return await _run(_engine.sendfile, out_fd, in_fd, offset, count)


async def copy_file_range(src: int, dst: int, count: int, offset_src: int | None = None,
                          offset_dst: int | None = None) -> int:
    if isinstance(count, int) and count < 0:   # os's own check, before the syscall
        raise ValueError("negative value for 'count' not allowed")
    return await _run(_engine.copy_file_range, src, dst, count, offset_src, offset_dst)


async def posix_fallocate(fd: int, offset: int, len: int, /) -> None:
    await _run(_engine.posix_fallocate, fd, offset, len)


async def fallocate(fd: int, mode: int, offset: int, length: int, /) -> None:
    """fallocate(2), which os lacks: mode 0 or linuxaio.FALLOC_FL_* flags."""
    await _run(_engine.fallocate, fd, mode, offset, length)


async def posix_fadvise(fd: int, offset: int, len: int, advice: int, /) -> None:
    await _run(_engine.posix_fadvise, fd, offset, len, advice)


async def sync() -> None:
    await _run(_engine.sync)


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


# ---- whole-tree work (linuxaio._tree, linuxaio.shutil) ----

async def copy_data(in_fd: int, out_fd: int, length: int | None = None, flags: int = 0) -> tuple[int, str]:
    """Copy length bytes (None: to the end) from in_fd's position to out_fd's,
    inside the kernel, in ONE request: a FICLONE reflink where the filesystem
    can (a copy to the end from offset 0 into an empty file), else
    copy_file_range, else sendfile, else read/write.  Returns (bytes, how),
    how being "reflink", "copy_file_range", "sendfile" or "read/write".
    flags (linuxaio-specific): 1 copy the mode, 2 the owner (EPERM ignored),
    4 the times (ns) of in_fd to out_fd afterwards; 8 no reflink."""
    n, how = await _run(_engine.copy_data, in_fd, out_fd, length, flags)
    return n, _HOW[how]


_HOW = {0: "none", 1: "reflink", 2: "copy_file_range", 3: "sendfile", 4: "read/write"}


async def scandir_at(path: Any = ".", *, dir_fd: int | None = None) -> list[tuple]:
    """The raw entries (name, d_type, 0, inode) of the directory path relative
    to dir_fd (an open directory's fd: ``"."`` lists that one), as the
    fd-based rmtree reads them; d_type may be 0 (DT_UNKNOWN)."""
    return await _run(_engine.scandir_at, path, dir_fd, 0)


async def scandir_stat(path: Any = ".", *, dir_fd: int | None = None) -> list[tuple]:
    """The entries of a directory with the lstat of each, read by ONE request:
    a list of (name, d_type, os.stat_result), or (name, d_type, errno) for an
    entry that could not be lstat'ed (it vanished meanwhile...)."""
    return await _run(_engine.scandir_stat, path, dir_fd)


async def scandir_totals(path: Any = ".", *, dir_fd: int | None = None) -> tuple:
    """A directory's entries added up by ONE request (linuxaio scan's):
    (files, dirs, symlinks, other, apparent bytes, allocated bytes,
    [subdirectory names], [(st_dev, st_ino, allocated bytes) of each
    hard-linked non-directory, left out of the allocated bytes],
    [(name, errno) of each entry that could not be lstat'ed])."""
    return await _run(_engine.scandir_totals, path, dir_fd)


async def copy_xattrs(src: Any, dst: Any, *, follow_symlinks: bool = True) -> None:
    """Copy src's extended attributes to dst in ONE request, as
    shutil.copystat does (errors it passes over are passed over)."""
    await _run(_engine.copy_xattrs, src, dst, (0 if follow_symlinks else _NOFOLLOW) | _XATTR_EACCES)


# copy_xattrs/copy_data's flag: pass over EACCES too, as shutil does from 3.12 on
_XATTR_EACCES = 32 if _sys.version_info >= (3, 12) else 0


async def copy_file(src: Any, dst: Any, flags: int = 0) -> int:
    """IO::AIO's aio_copy in ONE request: the regular file src copied to dst
    (created 0200, removed if anything fails), then flags' metadata (as
    copy_data's).  Returns the bytes copied."""
    return await _run(_engine.copy_file, src, dst, flags)


async def makedirs(name: Any, mode: int = 0o777, exist_ok: bool = False) -> None:
    """os.makedirs: the missing parents (mode 0o777, as os does), then name."""
    head, tail = _os.path.split(name)
    if not tail:
        head, tail = _os.path.split(head)
    if head and tail and not await _exists(head):
        try:
            await makedirs(head, exist_ok=exist_ok)
        except FileExistsError:
            pass    # made meanwhile by someone else
        cdir = _os.curdir.encode() if isinstance(tail, bytes) else _os.curdir
        if tail == cdir:
            return
    try:
        await mkdir(name, mode)
    except OSError:
        if not exist_ok or not await _isdir(name):
            raise


async def _exists(path: Any) -> bool:
    try:
        await stat(path)
    except (OSError, ValueError):
        return False
    return True


async def _isdir(path: Any) -> bool:
    try:
        return _stat.S_ISDIR((await stat(path)).st_mode)
    except (OSError, ValueError):
        return False


async def removedirs(name: Any) -> None:
    """os.removedirs: rmdir name, then its parents until one fails."""
    await rmdir(name)
    head, tail = _os.path.split(name)
    if not tail:
        head, tail = _os.path.split(head)
    while head and tail:
        try:
            await rmdir(head)
        except OSError:
            break
        head, tail = _os.path.split(head)


async def renames(old: Any, new: Any) -> None:
    """os.renames: make new's parents, rename, prune old's empty parents."""
    head, tail = _os.path.split(new)
    if head and tail and not await _exists(head):
        await makedirs(head)
    await rename(old, new)
    head, tail = _os.path.split(old)
    if head and tail:
        try:
            await removedirs(head)
        except OSError:
            pass


def walk(top: Any, topdown: bool = True, onerror: Any = None, followlinks: bool = False) -> Any:
    """An async iterator of os.walk's (dirpath, dirnames, filenames) tuples,
    in an order os.walk gives; with topdown, pruning dirnames in place
    prunes the walk.  The subdirectories of each directory are read ahead
    in parallel, by one batch, while the caller looks at it."""
    return _os_walk(top, topdown, onerror, followlinks)


def fwalk(top: Any = ".", topdown: bool = True, onerror: Any = None, *,
          follow_symlinks: bool = False, dir_fd: int | None = None) -> Any:
    """An async iterator of os.fwalk's (dirpath, dirnames, filenames, dirfd);
    dirfd is open while the tuple is being looked at."""
    return _os_fwalk(top, topdown, onerror, follow_symlinks, dir_fd)


# ---- linuxaio.os.walk / fwalk ----

class _Ahead:
    """The listings of a directory's subdirectories, asked for in one batch
    as soon as the directory was read (so they are read while the caller
    looks at it), taken one by one later."""

    __slots__ = ("req", "paths", "results")

    def __init__(self, paths: list) -> None:
        self.paths = paths
        self.req = _submit_now(_engine.submit_many, "scandir", [(p,) for p in paths])
        self.results: Optional[list] = None

    async def get(self, i: int) -> Any:
        if self.results is None:
            try:
                self.results = await self.req
            except BaseException:
                self.req = _submit_now(_engine.submit_many, "scandir", [(p,) for p in self.paths])
                raise
        return self.results[i]


async def _listing(path: Any, where: Any) -> Any:
    """path's scandir entries for a walk: from the batch that read them
    ahead (where: (_Ahead, index)), or by a request of its own (None)."""
    if where is None:
        return await _run(_engine.scandir, path)
    batch, i = where
    listing = batch.results[i] if batch.results is not None else await batch.get(i)
    if isinstance(listing, BaseException):
        raise _named_error(listing, path)
    return listing


def _named_error(exc: BaseException, path: Any) -> BaseException:
    if isinstance(exc, OSError) and exc.filename is None and exc.errno is not None:
        return type(exc)(exc.errno, exc.strerror, path)
    return exc


def _join(top: Any, name: Any) -> Any:
    if isinstance(top, bytes):
        return top + name if top.endswith(b"/") else top + b"/" + name
    return top + name if top.endswith("/") else top + "/" + name




async def _os_walk(top: Any, topdown: bool, onerror: Any, followlinks: bool) -> Any:
    top = _os.fspath(top)
    ahead: dict = {}                 # path -> (_Ahead, index)
    stack: list = [top]
    while stack:
        path = stack.pop()
        if isinstance(path, tuple):
            yield path
            continue
        try:
            listing = await _listing(path, ahead.pop(path, None))
        except OSError as exc:
            if onerror is not None:
                onerror(exc)
            continue
        dirs, nondirs, symlinked = [], [], set()
        for name, dtype, target, _ino in listing:
            if target == _DT_DIR:
                dirs.append(name)
                if dtype == _DT_LNK:
                    symlinked.add(name)
            else:
                nondirs.append(name)
        walk_into = [_join(path, n) for n in dirs if followlinks or n not in symlinked]
        if walk_into:
            batch = _Ahead(walk_into)
            for i, p in enumerate(walk_into):
                ahead[p] = (batch, i)
        if topdown:
            listed = set(dirs)
            yield path, dirs, nondirs
            for name in reversed(dirs):
                new_path = _join(path, name)
                if not followlinks and (name in symlinked or (name not in listed
                                                              and _os.path.islink(new_path))):
                    continue
                stack.append(new_path)
        else:
            stack.append((path, dirs, nondirs))
            stack.extend(reversed(walk_into))
    for batch, _ in ahead.values():
        batch.req.cancel()


FWALK_CHUNK = 64    # subdirectories opened (fds held) at once, per directory


async def _os_fwalk(top: Any, topdown: bool, onerror: Any, follow_symlinks: bool, dir_fd: Any) -> Any:
    top = _os.fspath(top)
    flags = _os.O_RDONLY | _os.O_NONBLOCK | _os.O_DIRECTORY | (0 if follow_symlinks else _os.O_NOFOLLOW)
    try:
        orig = await _run(_engine.stat, top, dir_fd, 0 if follow_symlinks else _engine.AT_SYMLINK_NOFOLLOW)
        fd, st = await _run(_engine.open_stat, top, flags & ~_os.O_DIRECTORY, 0, dir_fd)
    except OSError as exc:
        if onerror is not None:
            onerror(exc)
        return
    try:
        if follow_symlinks or (_stat.S_ISDIR(orig.st_mode) and _os.path.samestat(orig, st)):
            async for item in _fwalk_at(fd, top, topdown, onerror, follow_symlinks, flags):
                yield item
    finally:
        _os.close(fd)


async def _fwalk_at(fd: int, path: Any, topdown: bool, onerror: Any, follow: bool, flags: int) -> Any:
    try:
        listing = await _run(_engine.scandir_at, ".", fd, 1)
    except OSError as exc:
        if onerror is not None:
            onerror(_named_error(exc, path))
        return
    dirs, nondirs, inos = [], [], {}
    for name, dtype, target, ino in listing:
        if target == _DT_DIR:
            dirs.append(name)
            inos[name] = (dtype, ino)
        else:
            nondirs.append(name)
    if topdown:
        yield path, dirs, nondirs, fd
    names = list(dirs)
    for k in range(0, len(names), FWALK_CHUNK):
        chunk = names[k:k + FWALK_CHUNK]
        opened = await _run(_engine.submit_many, "open_stat", [(n, flags, 0, fd) for n in chunk])
        try:
            for i, (name, res) in enumerate(zip(chunk, opened)):
                sub = _join(path, name)
                if isinstance(res, BaseException):
                    if onerror is not None and not (not follow and getattr(res, "errno", 0) in (_ELOOP, _ENOTDIR)):
                        onerror(_named_error(res, sub))
                    continue
                cfd, st = res
                known = inos.get(name)
                if not follow and (known is None or known[1] != st.st_ino):
                    try:
                        lst = await _run(_engine.stat, name, fd, _engine.AT_SYMLINK_NOFOLLOW)
                    except OSError:
                        lst = None
                    if lst is None or not _os.path.samestat(lst, st):
                        continue
                async for item in _fwalk_at(cfd, sub, topdown, onerror, follow, flags):
                    yield item
        finally:
            for res in opened:
                if not isinstance(res, BaseException):
                    _os.close(res[0])
    if not topdown:
        yield path, dirs, nondirs, fd
