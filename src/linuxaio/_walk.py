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

