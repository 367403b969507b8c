"""linuxaio.aiofiles.tempfile: aiofiles.tempfile's TemporaryFile,
NamedTemporaryFile, SpooledTemporaryFile and TemporaryDirectory.

The files are created by engine requests (O_TMPFILE for TemporaryFile; an
O_EXCL create under a random name for NamedTemporaryFile; mkdir for
TemporaryDirectory) and are linuxaio files (the classes linuxaio.aiofiles.open
gives).  A SpooledTemporaryFile is the standard library's, in memory until it
rolls over; from then on its file's I/O goes to the engine.  The first use of
the default directory (tempfile.gettempdir(), which probes candidates by
writing to them) and a directory's removal run in a worker thread.
"""
from __future__ import annotations

import errno as _errno
import os as _os
import sys
import tempfile as _tempfile
from random import SystemRandom as _SystemRandom

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Iterator

from ... import _loop
from ... import os as _aos
from ..._file import _open, _open_args
from ..base import AiofilesContextManager
from ..threadpool import _CLASSES
from .temptypes import AsyncSpooledTemporaryFile, AsyncTemporaryDirectory

__all__ = ["NamedTemporaryFile", "TemporaryFile", "SpooledTemporaryFile", "TemporaryDirectory"]

_NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"
_rng = _SystemRandom()
_TMP_MAX = 10000


def _random_name() -> str:
    return "".join(_rng.choices(_NAME_CHARS, k=8))


async def _tempdir(dir: Any) -> Any:
    if dir is not None:
        return dir
    if _tempfile.tempdir is None:      # the first call probes: off the loop
        return await _loop.to_thread(_tempfile.gettempdir)
    return _tempfile.gettempdir()


def _affixes(prefix: Any, suffix: Any, dir: Any) -> tuple:
    if isinstance(prefix, bytes) or isinstance(suffix, bytes) or isinstance(dir, bytes):
        return (_os.fsencode(_tempfile.template) if prefix is None else prefix,
                b"" if suffix is None else suffix)
    return (_tempfile.template if prefix is None else prefix, "" if suffix is None else suffix)


def _candidates(prefix: Any, suffix: Any, dir: Any) -> Iterator:
    """The paths to try in dir (resolved: see _tempdir), as tempfile's: at
    most _TMP_MAX random names between prefix and suffix."""
    prefix, suffix = _affixes(prefix, suffix, dir)
    for _ in range(_TMP_MAX):
        name = _random_name()
        if isinstance(prefix, bytes):
            name = _os.fsencode(name)
        yield _os.path.abspath(_os.path.join(_os.fspath(dir), prefix + name + suffix))


async def _create(prefix: Any, suffix: Any, dir: Any) -> tuple:
    """(fd, path) of a new file, O_EXCL-created by the engine under a random name."""
    flags = _os.O_RDWR | _os.O_CREAT | _os.O_EXCL | _os.O_CLOEXEC
    for path in _candidates(prefix, suffix, await _tempdir(dir)):
        try:
            return await _aos.open(path, flags, 0o600), path
        except FileExistsError:
            continue
    raise FileExistsError(17, "No usable temporary file name found")


def _mode_args(fd: Any, mode: str, buffering: int, encoding: Any, newline: Any) -> tuple:
    return _open_args(fd, mode, buffering, encoding, None, newline, True, None, None, _CLASSES)


async def _file_on(fd: int, mode: str, buffering: int, encoding: Any, newline: Any,
                   name: Any) -> Any:
    try:
        args = _mode_args(fd, mode, buffering, encoding, newline)
        f = await _open(*args)
    except BaseException:
        _os.close(fd)
        raise
    b = getattr(f, "_b", f)
    b.name = name
    return f


# ---------------------------------------------------------------- TemporaryFile

def TemporaryFile(mode: str = "w+b", buffering: int = -1, encoding: str | None = None,
                  newline: str | None = None, suffix: Any = None, prefix: Any = None,
                  dir: Any = None, loop: Any = None, executor: Any = None
                  ) -> AiofilesContextManager:
    """An unnamed temporary file (O_TMPFILE: never linked into the directory)."""
    return AiofilesContextManager(_temporary_file(mode, buffering, encoding, newline,
                                                  suffix, prefix, dir))


async def _temporary_file(mode: str, buffering: int, encoding: Any, newline: Any,
                          suffix: Any, prefix: Any, dir: Any) -> Any:
    _mode_args(0, mode, buffering, encoding, newline)      # bad arguments: nothing made
    d = await _tempdir(dir)
    try:
        fd = await _aos.open(d, _os.O_RDWR | _os.O_TMPFILE | _os.O_EXCL | _os.O_CLOEXEC, 0o600)
    except OSError as exc:
        # EISDIR (a kernel without O_TMPFILE), EOPNOTSUPP (a file system
        # without it): create under a random name, then unlink at once
        if exc.errno not in (_errno.EISDIR, _errno.EOPNOTSUPP, _errno.EINVAL):
            raise
        fd, path = await _create(prefix, suffix, d)
        try:
            await _aos.unlink(path)
        except BaseException:
            _os.close(fd)
            raise
    return await _file_on(fd, mode, buffering, encoding, newline, fd)


# ----------------------------------------------------------- NamedTemporaryFile

_NAMED: dict = {}


class _Named:
    """What a named temporary file adds to a linuxaio.aiofiles file: the file
    is deleted at close() (delete_on_close) or at the context's end
    (delete), as tempfile.NamedTemporaryFile's."""

    _delete = True
    _delete_on_close = True
    _path: Any = None

    @property
    def delete(self) -> bool:
        return self._delete

    async def _unlink(self) -> None:
        path, self._path = self._path, None
        if path is not None:
            try:
                await _aos.unlink(path)
            except FileNotFoundError:
                pass

    async def close(self) -> None:
        try:
            await super().close()    # type: ignore[misc]
        finally:
            if self._delete and self._delete_on_close:
                await self._unlink()

    aclose = close

    async def _context_exit(self) -> None:
        try:
            await super().close()    # type: ignore[misc]
        finally:
            if self._delete:
                await self._unlink()

    async def __aexit__(self, *exc: Any) -> None:
        await self._context_exit()


def _named_class(cls: type) -> type:
    sub = _NAMED.get(cls)
    if sub is None:
        sub = _NAMED[cls] = type(cls.__name__, (_Named, cls),
                                 {"__module__": cls.__module__, "__qualname__": cls.__qualname__})
    return sub


if sys.version_info >= (3, 12):
    def NamedTemporaryFile(mode: str = "w+b", buffering: int = -1,
                           encoding: str | None = None, newline: str | None = None,
                           suffix: Any = None, prefix: Any = None, dir: Any = None,
                           delete: bool = True, delete_on_close: bool = True,
                           loop: Any = None, executor: Any = None) -> AiofilesContextManager:
        """A temporary file with a name in the directory (f.name), deleted at
        close() (delete_on_close) or at the end of ``async with`` (delete)."""
        return AiofilesContextManager(_named_temporary_file(
            mode, buffering, encoding, newline, suffix, prefix, dir, delete, delete_on_close))
else:
    def NamedTemporaryFile(mode: str = "w+b", buffering: int = -1,  # type: ignore[misc]
                           encoding: str | None = None, newline: str | None = None,
                           suffix: Any = None, prefix: Any = None, dir: Any = None,
                           delete: bool = True, loop: Any = None, executor: Any = None
                           ) -> AiofilesContextManager:
        """A temporary file with a name in the directory (f.name), deleted
        when closed (delete)."""
        return AiofilesContextManager(_named_temporary_file(
            mode, buffering, encoding, newline, suffix, prefix, dir, delete, True))


async def _named_temporary_file(mode: str, buffering: int, encoding: Any, newline: Any,
                                suffix: Any, prefix: Any, dir: Any, delete: bool,
                                delete_on_close: bool) -> Any:
    _mode_args(0, mode, buffering, encoding, newline)      # bad arguments: nothing made
    fd, path = await _create(prefix, suffix, dir)
    try:
        f = await _file_on(fd, mode, buffering, encoding, newline, path)
    except BaseException:
        try:
            _os.unlink(path)
        except OSError:
            pass
        raise
    f.__class__ = _named_class(type(f))
    f._path, f._delete, f._delete_on_close = path, bool(delete), bool(delete_on_close)
    return f


# ---------------------------------------------------------- SpooledTemporaryFile

def SpooledTemporaryFile(max_size: int = 0, mode: str = "w+b", buffering: int = -1,
                         encoding: str | None = None, newline: str | None = None,
                         suffix: Any = None, prefix: Any = None, dir: Any = None,
                         loop: Any = None, executor: Any = None) -> AiofilesContextManager:
    """A temporary file in memory until it grows past max_size (or fileno() is
    asked for), then on disk."""
    return AiofilesContextManager(_spooled(max_size, mode, buffering, encoding, newline,
                                           suffix, prefix, dir))


async def _spooled(max_size: int, mode: str, buffering: int, encoding: Any, newline: Any,
                   suffix: Any, prefix: Any, dir: Any) -> AsyncSpooledTemporaryFile:
    # In memory: making it does no I/O.
    f = _tempfile.SpooledTemporaryFile(max_size=max_size, mode=mode, buffering=buffering,
                                       encoding=encoding, newline=newline, suffix=suffix,
                                       prefix=prefix, dir=dir)
    return AsyncSpooledTemporaryFile(f)


# ------------------------------------------------------------ TemporaryDirectory

class AiofilesContextManagerTempDir(AiofilesContextManager):
    """``async with TemporaryDirectory() as name``: the name, not the object
    (as tempfile's); removed at the end."""

    async def __aenter__(self) -> Any:
        self._obj = await self
        return self._obj.name

    async def __aexit__(self, *exc: Any) -> None:
        obj, self._obj = self._obj, None
        if obj is not None:
            await obj.cleanup()


def TemporaryDirectory(suffix: Any = None, prefix: Any = None, dir: Any = None,
                       loop: Any = None, executor: Any = None) -> AiofilesContextManagerTempDir:
    """A new directory (mkdir on the engine, mode 0o700), removed with all
    it holds by cleanup() or at the end of ``async with``."""
    return AiofilesContextManagerTempDir(_temporary_directory(suffix, prefix, dir))


async def _temporary_directory(suffix: Any, prefix: Any, dir: Any) -> AsyncTemporaryDirectory:
    for path in _candidates(prefix, suffix, await _tempdir(dir)):
        try:
            await _aos.mkdir(path, 0o700)
        except FileExistsError:
            continue
        return AsyncTemporaryDirectory(path)
    raise FileExistsError(17, "No usable temporary directory name found")
