"""aiofiles.os: os's file functions as coroutines, on the engine.

Every name aiofiles.os 25.1 has, with the same arguments and results.  Each
calls the linuxaio.os function of that name (looked up at call time, so that
this module imports whatever linuxaio.os has: ``access``, ``statvfs``,
``sendfile``, ``makedirs``, ``removedirs`` and ``renames`` come with linuxaio.os
itself).  ``loop=`` and ``executor=`` are accepted and ignored.  ``scandir``
gives an iterator of os.DirEntry-like entries, as aiofiles' does (the whole
directory is read by one engine request first); ``getcwd`` asks the engine
(realpath(".")).  ``wrap`` makes any synchronous function a coroutine function
that runs it in a worker thread.
"""
from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

from .. import os as _aos
from . import ospath as path
from .base import wrap

# `import linuxaio.aiofiles.os.path` works, as `import os.path` does
import sys as _sys
_sys.modules[__name__ + ".path"] = path
del _sys

__all__ = [
    "path", "stat", "rename", "renames", "replace", "remove", "unlink", "mkdir",
    "makedirs", "rmdir", "removedirs", "symlink", "readlink", "listdir", "scandir",
    "access", "wrap", "getcwd", "link", "sendfile", "statvfs",
]


def _twin(name: str, doc: str) -> Callable[..., Any]:
    """aiofiles.os.<name>: linuxaio.os.<name>, found when called."""
    async def call(*args: Any, loop: Any = None, executor: Any = None, **kwargs: Any) -> Any:
        try:
            func = getattr(_aos, name)
        except AttributeError:
            raise NotImplementedError(
                f"linuxaio.aiofiles.os.{name} needs linuxaio.os.{name}, "
                f"which this build of linuxaio lacks") from None
        return await func(*args, **kwargs)
    call.__name__ = call.__qualname__ = name
    call.__doc__ = doc
    return call


stat = _twin("stat", "os.stat on the engine.")
rename = _twin("rename", "os.rename on the engine.")
renames = _twin("renames", "os.renames (rename, making and pruning directories) on the engine.")
replace = _twin("replace", "os.replace on the engine.")
remove = _twin("remove", "os.remove on the engine.")
unlink = _twin("unlink", "os.unlink on the engine.")
mkdir = _twin("mkdir", "os.mkdir on the engine.")
makedirs = _twin("makedirs", "os.makedirs on the engine.")
rmdir = _twin("rmdir", "os.rmdir on the engine.")
removedirs = _twin("removedirs", "os.removedirs on the engine.")
symlink = _twin("symlink", "os.symlink on the engine.")
readlink = _twin("readlink", "os.readlink on the engine.")
listdir = _twin("listdir", "os.listdir on the engine (one request).")
access = _twin("access", "os.access on the engine.")
link = _twin("link", "os.link on the engine.")
sendfile = _twin("sendfile", "os.sendfile on the engine.")
statvfs = _twin("statvfs", "os.statvfs on the engine.")


async def getcwd(*, loop: Any = None, executor: Any = None) -> str:
    """os.getcwd(), asked of the engine (realpath("."): the same answer)."""
    return await _aos.realpath(".")


class DirEntry:
    """An entry of scandir, with os.DirEntry's methods (synchronous, as the
    entries aiofiles gives): the type comes with the listing; stat() is a
    system call the first time (cached), as os.DirEntry's."""

    __slots__ = ("_e", "_stat", "_lstat")

    def __init__(self, entry: Any) -> None:
        self._e = entry
        self._stat = self._lstat = None

    @property
    def name(self) -> Any:
        return self._e.name

    @property
    def path(self) -> Any:
        return self._e.path

    def __fspath__(self) -> Any:
        return self._e.path

    def __repr__(self) -> str:
        return f"<DirEntry {self._e.name!r}>"

    def inode(self) -> int:
        return self._e.inode()

    def is_dir(self, *, follow_symlinks: bool = True) -> bool:
        return self._e.is_dir(follow_symlinks=follow_symlinks)

    def is_file(self, *, follow_symlinks: bool = True) -> bool:
        return self._e.is_file(follow_symlinks=follow_symlinks)

    def is_symlink(self) -> bool:
        return self._e.is_symlink()

    def is_junction(self) -> bool:
        return False

    def stat(self, *, follow_symlinks: bool = True) -> Any:
        import os
        if follow_symlinks and not self.is_symlink():
            follow_symlinks = False     # the same file: one cache
        if follow_symlinks:
            if self._stat is None:
                self._stat = os.stat(self._e.path)
            return self._stat
        if self._lstat is None:
            self._lstat = os.stat(self._e.path, follow_symlinks=False)
        return self._lstat


class _ScandirIterator:
    """What scandir gives: an iterator over the entries (os.scandir's
    iterator's methods: close(), and a context manager)."""

    __slots__ = ("_it",)

    def __init__(self, entries: list) -> None:
        self._it = map(DirEntry, entries)

    def __iter__(self) -> "_ScandirIterator":
        return self

    def __next__(self) -> Any:
        return next(self._it)

    def close(self) -> None:
        self._it = iter(())

    def __enter__(self) -> "_ScandirIterator":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


async def scandir(path: Any = ".", *, loop: Any = None, executor: Any = None) -> _ScandirIterator:
    """os.scandir: an iterator of entries (the directory read by one engine
    request; each entry's is_dir()/is_file() come from the listing)."""
    return _ScandirIterator(await _aos.scandir(path))
