"""linuxaio.Path's whole-tree methods: walk() (pathlib 3.12's), copy(),
copy_into(), move(), move_into() (pathlib 3.14's) and rmtree() (not in
pathlib), on every supported Python, 3.11 included.

A mixin of Path (src/linuxaio/_path.py), kept apart so that module stays
about single paths.  The work itself is linuxaio.shutil's and linuxaio.os's.
"""
from __future__ import annotations

import errno as _errno
import os as _os
from typing import Any, Callable, Optional

from . import _engine
from . import os as _aos
from ._loop import run as _run


class TreeMethods:
    __slots__ = ()

    def walk(self, top_down: bool = True, on_error: Optional[Callable[[OSError], Any]] = None,
             follow_symlinks: bool = False) -> Any:
        """An async iterator of (dirpath, dirnames, filenames), as pathlib 3.12's
        Path.walk: a symlink to a directory is a filename unless
        follow_symlinks; top_down allows pruning dirnames in place.  The
        subdirectories of each directory are listed ahead, in one batch."""
        return _path_walk(self, top_down, on_error, follow_symlinks)

    async def copy(self, target: Any, *, follow_symlinks: bool = True,
                   preserve_metadata: bool = False) -> Any:
        """Copy this file or directory tree to target (pathlib 3.14's copy);
        returns target as a Path.  A file replaces an existing target file;
        a tree needs target not to exist.  Errors in a tree are collected
        into one shutil.Error, as shutil.copytree raises."""
        from . import shutil as _ash
        target = target if isinstance(target, type(self)) else type(self)(target)  # type: ignore[call-arg]
        if not follow_symlinks and _os.path.islink(self):
            await _run(_engine.symlink, await _run(_engine.readlink, str(self), None), str(target), None)
            if preserve_metadata:
                await _ash.copystat(str(self), str(target), follow_symlinks=False)
            return target
        st = await _run(_engine.stat, str(self), None, 0)
        import stat as _stat
        if _stat.S_ISDIR(st.st_mode):
            await _ash.copytree(str(self), str(target), symlinks=not follow_symlinks,
                                copy_function=_ash.copy2 if preserve_metadata else _ash.copyfile)
        else:
            if preserve_metadata:
                await _ash.copy2(str(self), str(target))
            else:
                await _ash.copyfile(str(self), str(target))
        return target

    async def copy_into(self, target_dir: Any, *, follow_symlinks: bool = True,
                        preserve_metadata: bool = False) -> Any:
        """copy(target_dir / self.name)."""
        name = self.name   # type: ignore[attr-defined]
        if not name:
            raise ValueError(f"{self!r} has an empty name")
        target = (target_dir if isinstance(target_dir, type(self)) else type(self)(target_dir)) / name  # type: ignore[call-arg, operator]
        return await self.copy(target, follow_symlinks=follow_symlinks,
                               preserve_metadata=preserve_metadata)

    async def move(self, target: Any) -> Any:
        """Rename this file or tree to target (pathlib 3.14's move): os.replace,
        or, across filesystems, a copy keeping the metadata and symlinks,
        then the source removed.  Returns target as a Path."""
        from . import shutil as _ash
        target = target if isinstance(target, type(self)) else type(self)(target)  # type: ignore[call-arg]
        try:
            await _run(_engine.rename, str(self), str(target), None, None)
            return target
        except OSError as exc:
            if exc.errno != _errno.EXDEV:
                raise
        await self.copy(target, follow_symlinks=False, preserve_metadata=True)
        if _os.path.isdir(self) and not _os.path.islink(self):
            await _ash.rmtree(str(self))
        else:
            await _run(_engine.unlink, str(self), None)
        return target

    async def move_into(self, target_dir: Any) -> Any:
        """move(target_dir / self.name)."""
        name = self.name   # type: ignore[attr-defined]
        if not name:
            raise ValueError(f"{self!r} has an empty name")
        target = (target_dir if isinstance(target_dir, type(self)) else type(self)(target_dir)) / name  # type: ignore[call-arg, operator]
        return await self.move(target)

    async def rmtree(self, ignore_errors: bool = False,
                     on_error: Optional[Callable[[OSError], Any]] = None) -> None:
        """Remove this directory tree (linuxaio.shutil.rmtree: parallel, on
        directory handles).  on_error(exc) gets each failure, as Path.walk's."""
        from . import shutil as _ash
        onexc = None if on_error is None else (lambda func, path, exc: on_error(exc))
        await _ash.rmtree(str(self), ignore_errors=ignore_errors, onexc=onexc)


async def _path_walk(top: Any, top_down: bool, on_error: Any, follow_symlinks: bool) -> Any:
    stack: list = [top]
    ahead: dict = {}
    while stack:
        path = stack.pop()
        if isinstance(path, tuple):
            yield path
            continue
        try:
            listing = await _aos._listing(str(path), ahead.pop(path, None))
        except OSError as exc:
            if on_error is not None:
                on_error(exc)
            continue
        dirnames, filenames = [], []
        for name, dtype, target, _ino in listing:
            if (target if follow_symlinks else dtype) == _aos._DT_DIR:
                dirnames.append(name)
            else:
                filenames.append(name)
        if dirnames:
            children = [path / d for d in dirnames]
            batch = _aos._Ahead([str(c) for c in children])
            for i, c in enumerate(children):
                ahead[c] = (batch, i)
        if top_down:
            yield path, dirnames, filenames
        else:
            stack.append((path, dirnames, filenames))
        stack += [path / d for d in reversed(dirnames)]
    for batch, _ in ahead.values():
        batch.req.cancel()
