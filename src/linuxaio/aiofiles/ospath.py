"""aiofiles.ospath (``aiofiles.os.path``): os.path's functions that touch the
file system, as coroutines whose system calls run on the engine."""
from __future__ import annotations

import os as _os
import stat as _stat

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from .. import os as _aos
from .base import wrap as _wrap

__all__ = [
    "abspath", "getatime", "getctime", "getmtime", "getsize", "exists", "isdir",
    "isfile", "islink", "ismount", "samefile", "sameopenfile",
]


async def _stat_or_none(path: Any, follow_symlinks: bool = True) -> Any:
    try:
        return await _aos.stat(path, follow_symlinks=follow_symlinks)
    except (OSError, ValueError):
        return None


async def exists(path: Any, *, loop: Any = None, executor: Any = None) -> bool:
    """os.path.exists: False for a broken symlink, or any error."""
    return await _stat_or_none(path) is not None


async def isfile(path: Any, *, loop: Any = None, executor: Any = None) -> bool:
    st = await _stat_or_none(path)
    return st is not None and _stat.S_ISREG(st.st_mode)


async def isdir(path: Any, *, loop: Any = None, executor: Any = None) -> bool:
    st = await _stat_or_none(path)
    return st is not None and _stat.S_ISDIR(st.st_mode)


async def islink(path: Any, *, loop: Any = None, executor: Any = None) -> bool:
    st = await _stat_or_none(path, follow_symlinks=False)
    return st is not None and _stat.S_ISLNK(st.st_mode)


async def ismount(path: Any, *, loop: Any = None, executor: Any = None) -> bool:
    """os.path.ismount: a directory on another device than its parent, or
    the same inode as its parent (the root); never a symlink."""
    path = _os.fspath(path)
    st = await _stat_or_none(path, follow_symlinks=False)
    if st is None or _stat.S_ISLNK(st.st_mode):
        return False
    parent = _os.path.join(path, b".." if isinstance(path, bytes) else "..")
    pst = await _stat_or_none(parent, follow_symlinks=False)
    if pst is None:
        return False
    return st.st_dev != pst.st_dev or st.st_ino == pst.st_ino


async def getsize(path: Any, *, loop: Any = None, executor: Any = None) -> int:
    return (await _aos.stat(path)).st_size


async def getatime(path: Any, *, loop: Any = None, executor: Any = None) -> float:
    return (await _aos.stat(path)).st_atime


async def getmtime(path: Any, *, loop: Any = None, executor: Any = None) -> float:
    return (await _aos.stat(path)).st_mtime


async def getctime(path: Any, *, loop: Any = None, executor: Any = None) -> float:
    return (await _aos.stat(path)).st_ctime


async def samefile(f1: Any, f2: Any, *, loop: Any = None, executor: Any = None) -> bool:
    """os.path.samefile: both stats in one engine call."""
    s1, s2 = await _aos.stat_many([f1, f2])
    return s1.st_ino == s2.st_ino and s1.st_dev == s2.st_dev


async def sameopenfile(fp1: int, fp2: int, *, loop: Any = None, executor: Any = None) -> bool:
    s1 = await _aos.fstat(fp1)
    s2 = await _aos.fstat(fp2)
    return s1.st_ino == s2.st_ino and s1.st_dev == s2.st_dev


async def abspath(path: Any, *, loop: Any = None, executor: Any = None) -> Any:
    """os.path.abspath; the current directory (for a relative path) is asked
    of the engine."""
    path = _os.fspath(path)
    if not _os.path.isabs(path):
        cwd = await _aos.realpath(".")
        if isinstance(path, bytes):
            cwd = _os.fsencode(cwd)
        path = _os.path.join(cwd, path)
    return _os.path.normpath(path)


del _wrap
