"""Awaitable twins of ``shutil``: same names, parameters, results, exceptions
and metadata kept, on the engine.

File data moves inside the kernel, by one engine request per file
(reflink where the filesystem can, else copy_file_range, else sendfile,
else read/write: src/engine/ops_copy.c).  copytree copies a level of the
tree at a time, its files in waves of batched requests; rmtree removes in
parallel with *at() calls on directory handles (see linuxaio._tree).

The exceptions are shutil's own classes (``Error``, ``SameFileError``,
``SpecialFileError``...), so ``except shutil.Error`` catches ours too.
"""
from __future__ import annotations

import inspect as _inspect
import os as _os
import shutil as _shutil
import stat as _stat
import sys as _sys
from typing import Any, Callable, Optional

from . import _engine, _tree
from . import os as _aos
from ._loop import run as _run

Error = _shutil.Error
SameFileError = _shutil.SameFileError
SpecialFileError = _shutil.SpecialFileError
ReadError = _shutil.ReadError
ignore_patterns = _shutil.ignore_patterns
COPY_BUFSIZE = _shutil.COPY_BUFSIZE

__all__ = ["copyfileobj", "copyfile", "copymode", "copystat", "copy", "copy2", "copytree",
           "rmtree", "move", "disk_usage", "Error", "SameFileError", "SpecialFileError",
           "ignore_patterns"]


async def _maybe_await(value: Any) -> Any:
    if _inspect.isawaitable(value):
        return await value
    return value


async def copyfileobj(fsrc: Any, fdst: Any, length: int = 0) -> None:
    """Copy the data of one linuxaio file object to another, from fsrc's
    position to its end (awaited reads and writes of length bytes)."""
    if not length:
        length = COPY_BUFSIZE
    while True:
        buf = await fsrc.read(length)
        if not buf:
            break
        await fdst.write(buf)


async def _stat_or_none(path: Any, follow: bool = True) -> Optional[_os.stat_result]:
    try:
        return await _aos.stat(path, follow_symlinks=follow)
    except (OSError, ValueError):
        return None


async def _samefile(src: Any, dst: Any) -> bool:
    a, b = await _aos.stat_many([src, dst], return_exceptions=True)
    if isinstance(a, BaseException) or isinstance(b, BaseException):
        return False
    return _os.path.samestat(a, b)


async def _copyfile(src: Any, dst: Any, follow_symlinks: bool, meta: int, xattrs: bool) -> Any:
    if isinstance(src, _aos.DirEntry):
        src = src.path
    _sys.audit("shutil.copyfile", src, dst)
    if await _samefile(src, dst):
        raise SameFileError("{!r} and {!r} are the same file".format(src, dst))
    sts = await _aos.stat_many([src, dst], return_exceptions=True)
    for fn, st in zip((src, dst), sts):
        if not isinstance(st, BaseException) and _stat.S_ISFIFO(st.st_mode):
            raise SpecialFileError("`%s` is a named pipe" % (fn,))
    if not follow_symlinks and _os.path.islink(src):
        await _aos.symlink(await _aos.readlink(src), dst)
        return dst
    job = _tree.FileCopy(src, dst)
    await _tree.copy_files([job], meta, xattrs=xattrs)
    if job.error is not None:
        if isinstance(job.error, IsADirectoryError) and job.error.filename == dst \
                and not _os.path.exists(dst):
            raise FileNotFoundError(f"Directory does not exist: {dst}") from job.error
        raise job.error
    return dst


async def copyfile(src: Any, dst: Any, *, follow_symlinks: bool = True) -> Any:
    """Copy the data of src to dst (no metadata); returns dst."""
    return await _copyfile(src, dst, follow_symlinks, 0, False)


async def copymode(src: Any, dst: Any, *, follow_symlinks: bool = True) -> None:
    _sys.audit("shutil.copymode", src, dst)
    if not follow_symlinks and _os.path.islink(src) and _os.path.islink(dst):
        return          # no lchmod on Linux: shutil does nothing either
    st = await _aos.stat(src)
    await _aos.chmod(dst, _stat.S_IMODE(st.st_mode))


async def copystat(src: Any, dst: Any, *, follow_symlinks: bool = True) -> None:
    """Times (to the ns), extended attributes and mode bits, as shutil.copystat."""
    _sys.audit("shutil.copystat", src, dst)
    follow = follow_symlinks or not (_os.path.islink(src) and _os.path.islink(dst))
    st = await _aos.stat(src, follow_symlinks=follow)
    await _aos.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=follow)
    try:        # one engine request (ops_copy.c), shutil._copyxattr's rules
        await _run(_engine.copy_xattrs, src, dst, _tree.xattr_flags(follow))
    except OSError as exc:
        raise _tree.renamed(exc, dst) from None
    if follow:
        try:
            await _aos.chmod(dst, _stat.S_IMODE(st.st_mode))
        except NotImplementedError:
            pass


async def _dst_in(src: Any, dst: Any) -> Any:
    if _os.path.isdir(dst):
        return _os.path.join(dst, _os.path.basename(src))
    return dst


async def copy(src: Any, dst: Any, *, follow_symlinks: bool = True) -> Any:
    """Data and mode bits; dst may be a directory.  Returns the new file."""
    dst = await _dst_in(src, dst)
    if not follow_symlinks and _os.path.islink(src):
        return await copyfile(src, dst, follow_symlinks=False)
    return await _copyfile(src, dst, True, _tree.META_MODE, False)


async def copy2(src: Any, dst: Any, *, follow_symlinks: bool = True) -> Any:
    """Data and all the metadata copystat keeps; dst may be a directory."""
    dst = await _dst_in(src, dst)
    if not follow_symlinks and _os.path.islink(src):
        await copyfile(src, dst, follow_symlinks=False)
        await copystat(src, dst, follow_symlinks=False)
        return dst
    return await _copyfile(src, dst, True, _tree.META_MODE | _tree.META_TIMES, True)


_FAST = {copy2: _tree.META_MODE | _tree.META_TIMES, _shutil.copy2: _tree.META_MODE | _tree.META_TIMES,
         copy: _tree.META_MODE, _shutil.copy: _tree.META_MODE,
         copyfile: 0, _shutil.copyfile: 0}


async def copytree(src: Any, dst: Any, symlinks: bool = False, ignore: Any = None,
                   copy_function: Callable[..., Any] = copy2,
                   ignore_dangling_symlinks: bool = False, dirs_exist_ok: bool = False) -> Any:
    """shutil.copytree on the engine; returns dst, raises shutil.Error with
    the list of (src, dst, why) failures.

    copy2, copy and copyfile (ours or shutil's) run as batches of engine
    requests; any other copy_function is called (and awaited if it returns
    an awaitable) once per file, in order."""
    _sys.audit("shutil.copytree", src, dst)
    entries = await _aos.scandir(src)
    await makedirs(dst, exist_ok=dirs_exist_ok)
    fast = _FAST.get(copy_function)   # type: ignore[call-overload]
    errors: list = []
    level = [(src, dst, entries)]
    tree_dirs: list = [(src, dst)]          # for copystat once their contents are in
    while level:
        files: list = []                     # FileCopy jobs of this level
        subdirs: list = []                   # (srcname, dstname)
        links: list = []                     # (srcname, dstname, entry)
        for s, d, ents in level:
            names = [e.name for e in ents]
            ignored = await _maybe_await(ignore(_os.fspath(s), names)) if ignore is not None else ()
            for e in ents:
                if e.name in ignored:
                    continue
                srcname, dstname = _os.path.join(s, e.name), _os.path.join(d, e.name)
                if e.is_symlink():
                    links.append((srcname, dstname, e))
                elif e.is_dir():
                    subdirs.append((srcname, dstname))
                else:
                    files.append((srcname, dstname, e))
        if links:
            targets = await _tree.batch("readlink", [(s, None) for s, _, _ in links])
            made = []
            for (s, d, e), linkto in zip(links, targets):
                if isinstance(linkto, BaseException):
                    errors.append((s, d, str(_tree.named(linkto, s))))
                    continue
                if symlinks:
                    made.append((s, d, linkto))
                elif not _os.path.exists(linkto) and ignore_dangling_symlinks:
                    continue
                elif e.is_dir():
                    subdirs.append((s, d))
                else:
                    files.append((s, d, e))
            res = await _tree.batch("symlink", [(t, d, None) for _, d, t in made])
            ok = []
            for (s, d, t), r in zip(made, res):
                if isinstance(r, BaseException):
                    errors.append((s, d, str(_tree.named(r, t, d))))
                else:
                    ok.append((s, d))
            # copystat(follow_symlinks=False): the link's own times, then its
            # extended attributes (no lchmod on Linux); the first failure of
            # each is its error, as copystat raises it
            sts = await _tree.batch("stat", [(s, None, _tree.NOFOLLOW) for s, _ in ok])
            timed = []
            for (s, d), st in zip(ok, sts):
                if isinstance(st, BaseException):
                    errors.append((s, d, str(_tree.named(st, s))))
                else:
                    timed.append((s, d, st))
            res = await _tree.batch("utime", [(d, (st.st_atime_ns, st.st_mtime_ns), None, _tree.NOFOLLOW)
                                              for _, d, st in timed])
            xa = []
            for (s, d, _), r in zip(timed, res):
                if isinstance(r, BaseException):
                    errors.append((s, d, str(_tree.named(r, d))))
                else:
                    xa.append((s, d))
            res = await _tree.batch("copy_xattrs", [(s, d, _tree.xattr_flags(False)) for s, d in xa])
            for (s, d), r in zip(xa, res):
                if isinstance(r, BaseException):
                    errors.append((s, d, str(_tree.renamed(r, d))))
        if fast is not None:
            jobs = [_tree.FileCopy(s, d) for s, d, _ in files]
            await _tree.copy_files(jobs, fast, xattrs=bool(fast & _tree.META_TIMES))
            for j in jobs:
                if j.error is not None:
                    errors.append((j.src, j.dst, str(j.error)))
        else:
            for s, d, e in files:
                try:
                    await _maybe_await(copy_function(s, d))
                except Error as err:
                    errors.extend(err.args[0])
                except OSError as why:
                    errors.append((s, d, str(why)))
        # the next level: list the subdirectories, then make their copies
        listed = await _tree.list_dirs([s for s, _ in subdirs])
        okdirs = []
        for (s, d), res in zip(subdirs, listed):
            if isinstance(res, BaseException):
                errors.append((s, d, str(res)))
            else:
                okdirs.append((s, d, res))
        made = await _tree.batch("mkdir", [(d, 0o777, None) for _, d, _ in okdirs])
        level = []
        for (s, d, res), r in zip(okdirs, made):
            if isinstance(r, FileExistsError) and dirs_exist_ok and _os.path.isdir(d):
                r = None
            if isinstance(r, BaseException):
                errors.append((s, d, str(_tree.named(r, d))))
                continue
            prefix = s if s.endswith(("/", b"/")[isinstance(s, bytes)]) else s + ("/", b"/")[isinstance(s, bytes)]
            ents = [_aos.DirEntry(prefix + name, name, t, target, ino) for name, t, target, ino in res]
            level.append((s, d, ents))
            tree_dirs.append((s, d))
    # the directories' own metadata, once everything is inside them
    sts = await _tree.batch("stat", [(s, None, 0) for s, _ in tree_dirs])
    todo = []
    for (s, d), st in zip(tree_dirs, sts):
        if isinstance(st, BaseException):
            errors.append((s, d, str(_tree.named(st, s))))
        else:
            todo.append((s, d, st))
    res_x = await _tree.batch("copy_xattrs", [(s, d, _tree.xattr_flags(True)) for s, d, _ in todo])
    for (s, d, _), r in zip(todo, res_x):
        if isinstance(r, BaseException):
            errors.append((s, d, str(_tree.renamed(r, d))))
    res_t = await _tree.batch("utime", [(d, (st.st_atime_ns, st.st_mtime_ns), None, 0) for _, d, st in todo])
    res_m = await _tree.batch("chmod", [(d, _stat.S_IMODE(st.st_mode), None, 0) for _, d, st in todo])
    for (s, d, _), rt, rm in zip(todo, res_t, res_m):
        for r in (rt, rm):
            if isinstance(r, BaseException):
                errors.append((s, d, str(_tree.named(r, d))))
                break
    if errors:
        raise Error(errors)
    return dst


async def makedirs(name: Any, mode: int = 0o777, exist_ok: bool = False) -> None:
    await _aos.makedirs(name, mode, exist_ok)


async def rmtree(path: Any, ignore_errors: bool = False, onerror: Any = None, *,
                 onexc: Any = None, dir_fd: Optional[int] = None) -> None:
    """Remove a directory tree, as shutil.rmtree (its fd-based, symlink-attack
    safe variant), in parallel.  onexc(func, path, exc) as 3.12's; onerror
    (func, path, exc_info) for compatibility (ignored when onexc is given,
    as 3.12's)."""
    _sys.audit("shutil.rmtree", path, dir_fd)
    if isinstance(path, bytes):      # as shutil's fd-based variant
        path = _os.fsdecode(path)
    if ignore_errors:
        def handler(func: Any, p: Any, exc: BaseException) -> None:
            pass
    elif onexc is not None:
        handler = onexc
    elif onerror is not None:
        def handler(func: Any, p: Any, exc: BaseException) -> None:
            onerror(func, p, (type(exc), exc, exc.__traceback__))
    else:
        def handler(func: Any, p: Any, exc: BaseException) -> None:
            raise exc
    if isinstance(path, _os.PathLike):
        path = _os.fspath(path)
    await _tree.remove_tree(path, dir_fd, handler)


async def move(src: Any, dst: Any, copy_function: Callable[..., Any] = copy2) -> Any:
    """shutil.move: rename, or (another filesystem) copy then remove."""
    _sys.audit("shutil.move", src, dst)
    real_dst = dst
    if _os.path.isdir(dst):
        if _shutil._samefile(src, dst) and not _os.path.islink(src):   # type: ignore[attr-defined]
            await _aos.rename(src, dst)
            return
        real_dst = _os.path.join(dst, _shutil._basename(src))   # type: ignore[attr-defined]
        if _os.path.exists(real_dst):
            raise Error("Destination path '%s' already exists" % real_dst)
    try:
        await _aos.rename(src, real_dst)
    except OSError:
        if _os.path.islink(src):
            linkto = await _aos.readlink(src)
            await _aos.symlink(linkto, real_dst)
            await _aos.unlink(src)
        elif _os.path.isdir(src):
            if _shutil._destinsrc(src, dst):   # type: ignore[attr-defined]
                raise Error("Cannot move a directory '%s' into itself '%s'." % (src, dst))
            if _shutil._is_immutable(src) or (not _os.access(src, _os.W_OK)   # type: ignore[attr-defined]
                                              and _os.listdir(src)):
                raise PermissionError("Cannot move the non-empty directory "
                                      "'%s': Lacking write permission to '%s'." % (src, src))
            await copytree(src, real_dst, copy_function=copy_function, symlinks=True)
            await rmtree(src)
        else:
            await _maybe_await(copy_function(src, real_dst))
            await _aos.unlink(src)
    return real_dst


async def disk_usage(path: Any) -> Any:
    """shutil.disk_usage's (total, used, free), the statvfs made by a worker."""
    st = None
    if hasattr(_engine, "statvfs"):      # the engine's statvfs row, where built
        try:
            st = await _run(_engine.statvfs, path)
        except TypeError:
            st = None
    if not hasattr(st, "f_blocks"):      # else os.statvfs here: one quick call
        return _shutil.disk_usage(path)
    total = st.f_blocks * st.f_frsize
    free = st.f_bavail * st.f_frsize
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    return _shutil._ntuple_diskusage(total, used, free)   # type: ignore[attr-defined]
