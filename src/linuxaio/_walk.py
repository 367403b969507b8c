"""The batched directory walk: how a walk over a tree reads it.

glob, rglob and with_stat use it (and the tree tools to come: an async
os.walk, scan, copy, rm).  A walk names what it will need next, and the
listings of many directories are read by one engine call (submit_many
"scandir"), the stats of many paths by another: the workers serve them in
parallel while the walk waits once, instead of once per directory.  Stats
for a stream of paths run STAT_AHEAD batches ahead of the consumer.

Listings are lists of (name, d_type, target type, inode) entries, as the
engine's scandir returns them; an error reading one is kept in its place,
for the walk to raise or pass over."""
from __future__ import annotations

from errno import EBADF, ELOOP, ENOENT, ENOTDIR

from . import _engine, _loop
from ._loop import run as _run

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Awaitable, Callable, Optional

DT_DIR = 4                 # d_type of a directory (dirent.h)
STAT_CHUNK = 1024          # paths stat'ed by one engine call, at most
STAT_AHEAD = 3             # stat batches in flight while the walk goes on
IGNORED_ERRNOS = (ENOENT, ENOTDIR, EBADF, ELOOP)   # what pathlib's is_*() treat as "no"


def ignorable(exc: BaseException) -> bool:
    """A stat error that means "no such path (any more)", not a failure."""
    return getattr(exc, "errno", None) in IGNORED_ERRNOS


async def read_into(lists: dict, stats: dict, dirs: list, paths: list) -> None:
    """Read the listings of dirs into lists and the stats of paths into
    stats (each keyed by its string; an OSError in place of a value), in
    one engine call each."""
    if len(dirs) == 1:       # one request costs less than a batch of one
        try:
            results: list = [await _run(_engine.scandir, dirs[0])]
        except OSError as exc:
            results = [exc]
    elif dirs:
        results = await _run(_engine.submit_many, "scandir", [(d,) for d in dirs])
    if dirs:
        lists.update(zip(dirs, results))
    if paths:
        results = await _run(_engine.submit_many, "stat", [(s, None, 0) for s in paths])
        stats.update(zip(paths, results))


class StatPairs:
    """The paths of a walk with their stats, as an async iterator of
    (path, stat_result or None).

    next_batch() gives the walk's next paths (a list, or None at the end).
    Up to STAT_AHEAD batches of stats (STAT_CHUNK paths each) are in flight
    while the walk goes on.  A path that vanished or is a broken symlink
    (see ignorable) gets None; any other error is raised."""

    __slots__ = ("_next_batch", "_flags", "_buf", "_pos", "_ahead", "_walk_done")

    def __init__(self, next_batch: Callable[[], Awaitable[Optional[list]]], flags: int) -> None:
        self._next_batch, self._flags = next_batch, flags
        self._buf: list = []
        self._pos = 0
        self._ahead: list = []      # [paths, their stat request], oldest first
        self._walk_done = False

    def __aiter__(self) -> "StatPairs":
        return self

    def _stat(self, paths: list) -> Any:
        return _loop.submit_now(_engine.submit_many, "stat", [(p, None, self._flags) for p in paths])

    async def __anext__(self) -> tuple:
        pos = self._pos
        buf = self._buf
        if pos < len(buf):
            self._pos = pos + 1
            return buf[pos]
        ahead = self._ahead
        while True:
            while not self._walk_done and len(ahead) < STAT_AHEAD:
                paths = await self._next_batch()
                if not paths:
                    self._walk_done = True
                    break
                for k in range(0, len(paths), STAT_CHUNK):
                    chunk = paths[k:k + STAT_CHUNK]
                    ahead.append((chunk, self._stat(chunk)))
            if not ahead:
                self._buf, self._pos = [], 0
                raise StopAsyncIteration
            paths, req = ahead[0]
            try:
                sts = await req
            except BaseException:
                # cancelled (the request with us): ask again at the next step
                ahead[0] = (paths, self._stat(paths))
                raise
            del ahead[0]
            pairs = []
            for p, st in zip(paths, sts):
                if isinstance(st, BaseException):
                    if not ignorable(st):
                        raise st
                    st = None
                pairs.append((p, st))
            if pairs:
                self._buf, self._pos = pairs, 1
                return pairs[0]

    async def aclose(self) -> None:
        """Stop: cancel the stats in flight (harmless if left to finish) and
        end the iteration."""
        for _, req in self._ahead:
            req.cancel()
        self._ahead.clear()
        self._walk_done = True
        self._buf, self._pos = [], 0


# ---- linuxaio.os.walk / fwalk ----

class _Ahead:
    """The listings of a directory's subdirectories, asked for in one batch
    as soon as the directory was read (so they are read while the caller
    looks at it), taken one by one later."""

    __slots__ = ("req", "paths", "results")

    def __init__(self, paths: list) -> None:
        self.paths = paths
        self.req = _loop.submit_now(_engine.submit_many, "scandir", [(p,) for p in paths])
        self.results: Optional[list] = None

    async def get(self, i: int) -> Any:
        if self.results is None:
            try:
                self.results = await self.req
            except BaseException:
                self.req = _loop.submit_now(_engine.submit_many, "scandir", [(p,) for p in self.paths])
                raise
        return self.results[i]


def _named(exc: BaseException, path: Any) -> BaseException:
    if isinstance(exc, OSError) and exc.filename is None and exc.errno is not None:
        return type(exc)(exc.errno, exc.strerror, path)
    return exc


def _join(top: Any, name: Any) -> Any:
    if isinstance(top, bytes):
        return top + name if top.endswith(b"/") else top + b"/" + name
    return top + name if top.endswith("/") else top + "/" + name


DT_LNK = 10


async def os_walk(top: Any, topdown: bool, onerror: Any, followlinks: bool) -> Any:
    import os as _os
    top = _os.fspath(top)
    ahead: dict = {}                 # path -> (_Ahead, index)
    links: dict = {}                 # dirpath -> names of its entries that are symlinks
    stack: list = [top]
    while stack:
        path = stack.pop()
        if isinstance(path, tuple):
            yield path
            continue
        where = ahead.pop(path, None)
        try:
            if where is None:
                listing = await _run(_engine.scandir, path)
            else:
                listing = where[0].results[where[1]] if where[0].results is not None \
                    else await where[0].get(where[1])
                if isinstance(listing, BaseException):
                    raise _named(listing, path)
        except OSError as exc:
            if onerror is not None:
                onerror(exc)
            continue
        dirs, nondirs, symlinked = [], [], set()
        for name, dtype, target, _ino in listing:
            if target == DT_DIR:
                dirs.append(name)
                if dtype == DT_LNK:
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


async def os_fwalk(top: Any, topdown: bool, onerror: Any, follow_symlinks: bool, dir_fd: Any) -> Any:
    import os as _os
    import stat as _stat
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
    import os as _os
    try:
        listing = await _run(_engine.scandir_at, ".", fd, 1)
    except OSError as exc:
        if onerror is not None:
            onerror(_named(exc, path))
        return
    dirs, nondirs, inos = [], [], {}
    for name, dtype, target, ino in listing:
        if target == DT_DIR:
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
                    if onerror is not None and not (not follow and getattr(res, "errno", 0) in (ELOOP, ENOTDIR)):
                        onerror(_named(res, sub))
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
