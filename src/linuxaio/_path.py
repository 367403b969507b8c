"""linuxaio.Path: pathlib's Path whose I/O methods are awaitable and run on the engine.

The pure methods (``/``, ``name``, ``suffix``, ``parent``, ``with_name``,
``joinpath``, ``relative_to``...) are PurePosixPath's, synchronous, and return
``linuxaio.Path``.  The methods that touch the file system are coroutines (or,
for ``iterdir``/``glob``/``rglob``, async iterators) whose system calls run on
the engine's worker threads, under asyncio, uvloop or trio.  There is no
Python thread pool.  ``cwd``, ``home``, ``absolute`` and ``expanduser`` are
coroutines too, as in anyio (they were synchronous before 0.2: the current
directory is asked of the engine, whose realpath(".") is getcwd's answer;
blockbuster counts os.getcwd() on the loop as blocking).

anyio compatibility: ``linuxaio.Path`` has anyio.Path's methods on each Python
(``owner``, ``group``, ``is_junction``, ``from_uri`` on 3.13...), and its
``limiter=``: ``Path(p, limiter=L)`` runs each request of that path (and of
the paths derived from it: ``/``, ``parent``, the results of ``glob``...)
holding one of L's tokens; ``p.limiter`` gives it back.

Behaviour follows pathlib (Python 3.11), including the exceptions raised.
Where they differ:

- An error's ``filename`` is the path as a string, not the Path object.
- ``write_text`` encodes before it opens the file, so a bad encoding, error
  handler or newline raises without creating or truncating the file (the
  builtin open creates or truncates it first); ``write_bytes`` likewise
  checks its buffer first.
- ``glob``/``rglob`` check their pattern when called, not at the first step.
  While walking they skip a directory they cannot read, or a literal name
  they cannot stat, for these errors only: PermissionError (as pathlib 3.11),
  FileNotFoundError and NotADirectoryError (it vanished or stopped being a
  directory during the walk; pathlib 3.11 raises) and ELOOP (a symlink loop).
  Any other OSError (EMFILE, ENOMEM, EIO, ENAMETOOLONG...) is raised, after
  the matches found before it: unlike 3.13's pathlib, which swallows every
  OSError, a walk never passes a lack of resources off as fewer matches.
  The results are those of pathlib, with no duplicates. The order is depth
  first, as in pathlib, and each directory's entries come in the order the
  directory lists them.

``glob``, ``rglob`` and ``iterdir`` read directories with getdents64 on the
engine (the batched reads of _walk.py). Every entry's type comes with the
listing, so the walk never stats an entry. Up to ``GLOB_BATCH`` directories are
read by one engine call, which the workers serve in parallel. Their iterators also have ``with_stat()``, which yields
``(path, stat_result)`` pairs. The stats are taken in batches, one engine call
per directory's worth of results, rather than one awaited request per path.
"""
from __future__ import annotations

import fnmatch as _fnmatch
import functools as _functools
import io as _io
import os as _os
import pathlib as _pathlib
import re as _re
import sys as _sys
from errno import EACCES, ELOOP, ENOENT, ENOTDIR, EPERM
from stat import S_ISBLK, S_ISCHR, S_ISDIR, S_ISFIFO, S_ISLNK, S_ISREG, S_ISSOCK
from typing import Any, Callable, Optional

from . import _engine
from . import os as _aos
from . import _loop, _walk
from ._path_tree import TreeMethods as _TreeMethods   # walk, copy, move, rmtree
from ._loop import run as _run

__all__ = ["Path", "PathIterator", "GLOB_BATCH"]

GLOB_BATCH = 16            # directories read by one engine call during a glob walk

_NOFOLLOW = _engine.AT_SYMLINK_NOFOLLOW
_DT_DIR = _walk.DT_DIR
_GLOB_SKIPPED_ERRNOS = (EACCES, EPERM, ENOENT, ENOTDIR, ELOOP)   # see _skipped_by_glob
_FOLLOW_MAX_LEN = 3072     # recurse_symlinks stops entering symlinks past this path length
_MAX_SYMLINKS = 40         # Linux's MAXSYMLINKS: resolve() gives up after this many
_WRITE_FLAGS = _os.O_WRONLY | _os.O_CREAT | _os.O_TRUNC   # the builtin open's "w"


_ignorable = _walk.ignorable


def _skipped_by_glob(exc: BaseException) -> bool:
    """Whether a glob walk passes over this error: no permission (as pathlib
    3.11's glob), or a name that vanished, is no longer a directory or is a
    symlink loop (what pathlib's is_dir() treats as "no").  Anything else
    (EMFILE, ENOMEM, EIO, ENAMETOOLONG...) raises: skipped, a shortage of
    resources would pass for a smaller set of matches."""
    return getattr(exc, "errno", None) in _GLOB_SKIPPED_ERRNOS


def _prefix(parent: str) -> str:
    """What goes before a name in the string of Path(parent) / name, given
    str(Path(parent)): a walk adds it to each of a directory's names."""
    if parent == ".":
        return ""
    return parent if parent.endswith("/") else parent + "/"


def _join(parent: str, name: str) -> str:
    """The string of Path(parent) / name, given str(Path(parent))."""
    return _prefix(parent) + name


async def _write_fd(fd: int, view: memoryview) -> None:
    """Write all of view at fd's position, looping on short writes."""
    off, end = 0, view.nbytes
    while off < end:
        off += await _aos.write(fd, view[off:] if off else view)


# ------------------------------------------------------------------ children

def _children_factory() -> Callable[[Any, str, Any], list]:
    """The fastest correct way, on this Python, to make [parent / name for
    name in names] for names read from a directory (parent_str is
    str(parent)).  A walk makes one path per entry.

    First choice: each new path's slots filled in directly, as pathlib's own
    child maker fills them but without its two calls a path (0.48 -> 0.22 us
    a path on 3.11).  Then pathlib's child maker.  Each candidate is checked
    against ``parent / name`` here, once; the plain ``/`` is the fallback,
    should a pathlib keep its parts differently."""
    new = object.__new__
    mk = getattr(_pathlib.Path, "_make_child_relpath", None)
    from_string = getattr(_pathlib.PurePath, "_from_parsed_string", None)

    def slots_311(parent: Any, parent_str: str, names: Any) -> list:
        # 3.11 keeps (drive, root, parts); the hash and such are made lazily.
        # The limiter is set, None too: the stat runner's guard reads it, and
        # an unset slot would cost it an AttributeError a path.
        drv, root, parts, pre = parent._drv, parent._root, parent._parts, _prefix(parent_str)
        limiter = getattr(parent, "_limiter", None)
        out = []
        for name in names:
            child = new(Path)
            child._drv = drv
            child._root = root
            child._parts = parts + [name]
            child._str = pre + name
            child._limiter = limiter
            out.append(child)
        return out

    def slots_312(parent: Any, parent_str: str, names: Any) -> list:
        # 3.12+ keep the raw strings and (drive, root, tail), the tail lazily
        drv, root, tail, pre = parent.drive, parent.root, parent._tail, _prefix(parent_str)
        limiter = parent._limiter
        out = []
        for name in names:
            child = new(Path)
            child._str = s = pre + name
            child._raw_paths = [s]
            child._drv = drv
            child._root = root
            child._tail_cached = tail + [name]
            child._limiter = limiter
            out.append(child)
        return out

    def slash(parent: Any, parent_str: str, names: Any) -> list:
        return [parent / name for name in names]

    candidates = [slots_311] if _sys.version_info < (3, 12) else [slots_312]
    if mk is not None:
        def mk_with_str(parent: Any, parent_str: str, names: Any) -> list:
            pre, out = _prefix(parent_str), []
            for name in names:
                child = mk(parent, name)
                child._str = pre + name
                out.append(child)
            return out
        candidates.append(mk_with_str)
    if from_string is not None:
        def from_str(parent: Any, parent_str: str, names: Any) -> list:
            pre = _prefix(parent_str)
            return [from_string(parent, pre + name) for name in names]
        candidates.append(from_str)

    def works(make: Callable[[Any, str, Any], list]) -> bool:
        names = ("c", ".h", "d e", "\u00fc", "[x]", "..", "*", "e.tar.gz")
        try:
            for parent in ("/", "//", "/a/b", "a", ".", "a/b/"):
                p = Path(parent)
                made = make(p, str(p), names)
                if len(made) != len(names):
                    return False
                for name, got in zip(names, made):
                    want = p / name
                    if (type(got) is not Path or str(got) != str(want) or got != want
                            or got.parts != want.parts or hash(got) != hash(want)
                            or got.parent != p or got.name != want.name
                            or got.suffixes != want.suffixes or got.anchor != want.anchor
                            or str(got / "f") != str(want / "f")
                            or str(got.with_name("g")) != str(want.with_name("g"))
                            or got.relative_to(p) != want.relative_to(p)
                            or got.match("*") != want.match("*")
                            or got.limiter is not None):
                        return False
            return True
        except Exception:
            return False

    for make in candidates:
        if works(make):
            return make
    return slash


def _make_child(parent: Any, parent_str: str, name: str) -> Any:
    """parent / name (parent_str is str(parent)), as _make_children makes it."""
    return _make_children(parent, parent_str, (name,))[0]


# ------------------------------------------------------------------- globbing

_REC, _WILD, _EXACT, _END = range(4)


@_functools.lru_cache(maxsize=256)
def _compile_pattern(pattern: str, recursive: bool, case_sensitive: bool) -> tuple:
    """(parts, dedup): parts is a tuple of (kind, arg) for each pattern
    component; arg is a fullmatch function or None (matches any name) for
    _WILD, the name for _EXACT."""
    if pattern.startswith("/"):
        raise NotImplementedError("Non-relative patterns are unsupported")
    names = [n for n in pattern.split("/") if n and n != "."]
    if recursive:
        names.insert(0, "**")
    if not names:
        raise ValueError(f"Unacceptable pattern: {pattern!r}")
    if pattern.endswith("/"):
        names.append("")            # a trailing slash: directories only
    flags = 0 if case_sensitive else _re.IGNORECASE
    parts = []
    for name in names:
        if not name:
            parts.append((_END, None))
        elif name == "**":
            parts.append((_REC, None))
        elif "**" in name:
            raise ValueError("Invalid pattern: '**' can only be an entire path component")
        elif name == "*":
            parts.append((_WILD, None))
        elif name == ".." or (case_sensitive and not any(c in name for c in "*?[")):
            parts.append((_EXACT, name))
        else:
            parts.append((_WILD, _re.compile(_fnmatch.translate(name), flags).fullmatch))
    # With two '**', a path can be reached along two routes: drop repeats.
    return tuple(parts), names.count("**") > 1


class _Listing:
    """One directory's entries (name, d_type, target type, inode) and the
    children's Paths, made as they are needed."""

    __slots__ = ("path", "pstr", "entries", "paths", "missing")

    def __init__(self, path: "Path", pstr: str, entries: list) -> None:
        self.path, self.pstr, self.entries = path, pstr, entries
        self.paths: list = [None] * len(entries)
        self.missing = len(entries)     # children not made yet

    def children(self, idx: Any) -> list:
        """The children at the indices idx, those not made yet made in one batch."""
        paths = self.paths
        todo = [i for i in idx if paths[i] is None]
        if todo:
            entries = self.entries
            made = _make_children(self.path, self.pstr, [entries[i][0] for i in todo])
            for i, p in zip(todo, made):
                paths[i] = p
            self.missing -= len(todo)
        return [paths[i] for i in idx]

    def all_children(self) -> list:
        if self.missing == len(self.entries):
            self.paths = _make_children(self.path, self.pstr, [e[0] for e in self.entries])
            self.missing = 0
        elif self.missing:
            self.children(range(len(self.entries)))
        return self.paths


class _GlobWalk:
    """The matches of a compiled pattern under a root, depth first.

    A stack holds (path, its string, index of the pattern part still to
    match).  When the item on top needs a directory listing (or, for a literal
    part, a stat) that has not been read yet, the walk reads it together with
    those of up to GLOB_BATCH - 1 items below it: one engine call whose
    requests the workers serve in parallel.  next_batch() hands out the
    matches gathered so far before it waits for more I/O."""

    def __init__(self, root: "Path", parts: tuple, dedup: bool, batch: int) -> None:
        self.parts, self.n = parts, len(parts)
        # the parts before the last match directories only (entry.is_dir())
        self.last = self.n - 1 if parts[-1][0] == _END else self.n
        self.seen: Optional[set] = set() if dedup else None
        self.stack = [(root, str(root), 0)]
        self.lists: dict = {}      # dir string -> entries list or OSError
        self.stats: dict = {}      # path string -> stat_result or OSError
        self.memo: Optional[_Listing] = None   # the listing used last
        self.batch = max(1, batch)
        self.error: Optional[BaseException] = None   # to raise at the next step
        self.follow = False        # recurse_symlinks: ** enters symlinked directories

    def _needs(self, item: tuple) -> Optional[tuple]:
        """What item lacks: ("L", dir string) or ("S", path string), or None."""
        _, pstr, k = item
        kind, arg = self.parts[k]
        if kind == _EXACT:
            cstr = _join(pstr, arg)
            return None if cstr in self.stats else ("S", cstr)
        if pstr in self.lists or (self.memo is not None and self.memo.pstr == pstr):
            return None
        return ("L", pstr)

    async def _fetch(self) -> None:
        """Read what the top items of the stack lack, in one or two engine calls."""
        dirs: list = []
        stats: list = []
        wanted: set = set()
        stack = self.stack
        for i in range(len(stack) - 1, max(-1, len(stack) - 1 - 4 * self.batch), -1):
            need = self._needs(stack[i])
            if need is not None and need not in wanted:
                wanted.add(need)
                (dirs if need[0] == "L" else stats).append(need[1])
                if len(wanted) >= self.batch:
                    break
        await _walk.read_into(self.lists, self.stats, dirs, stats)

    def _listing(self, path: "Path", pstr: str) -> Any:
        """The listing of pstr (a _Listing) or the OSError reading it raised."""
        memo = self.memo
        if memo is not None and memo.pstr == pstr:
            return memo
        entries = self.lists.pop(pstr)
        if isinstance(entries, BaseException):
            return entries
        self.memo = memo = _Listing(path, pstr, entries)
        return memo

    def _emit(self, out: list, path: "Path") -> None:
        seen = self.seen
        if seen is not None:
            key = str(path)
            if key in seen:
                return
            seen.add(key)
        out.append(path)

    def _fail(self, out: list, exc: BaseException) -> list:
        """Raise exc, once the matches found before it have been handed out."""
        if out:
            self.error = exc
            return out
        raise exc

    async def next_batch(self) -> Optional[list]:
        """The next matches (a non-empty list), or None when the walk is over."""
        if self.error is not None:
            exc, self.error = self.error, None
            raise exc
        out: list = []
        stack, parts, last = self.stack, self.parts, self.last
        while stack:
            item = stack[-1]
            if self._needs(item) is not None:
                if out:
                    return out          # hand these out before waiting for I/O
                await self._fetch()     # cancelled: the stack is as it was
                continue
            stack.pop()
            path, pstr, k = item
            kind, arg = parts[k]
            j = k + 1
            if kind == _REC:
                listing = self._listing(path, pstr)
                if isinstance(listing, BaseException):
                    if not _skipped_by_glob(listing):
                        return self._fail(out, listing)
                    if not isinstance(listing, PermissionError):
                        continue        # not a directory (any more): no matches
                else:
                    # the subdirectories (through symlinks too with
                    # recurse_symlinks, up to near PATH_MAX), first on top
                    entries = listing.entries
                    t = 2 if self.follow and len(pstr) < _FOLLOW_MAX_LEN else 1
                    subdirs = listing.children([i for i in range(len(entries) - 1, -1, -1)
                                                if entries[i][t] == _DT_DIR])
                    stack.extend([(c, str(c), k) for c in subdirs])
                if j >= last:
                    self._emit(out, path)
                else:
                    stack.append((path, pstr, j))
            elif kind == _WILD:
                listing = self._listing(path, pstr)
                if isinstance(listing, BaseException):
                    if not _skipped_by_glob(listing):
                        return self._fail(out, listing)
                    continue
                entries = listing.entries
                if j < self.n:          # not the last part: directories only
                    idx = [i for i, e in enumerate(entries) if e[2] == _DT_DIR]
                else:
                    idx = None
                if arg is not None:
                    idx = [i for i in (range(len(entries)) if idx is None else idx)
                           if arg(entries[i][0])]
                if j >= last:
                    if idx is None and self.seen is None:
                        out.extend(listing.all_children())
                    else:
                        for c in listing.children(range(len(entries)) if idx is None else idx):
                            self._emit(out, c)
                else:
                    idx = range(len(entries)) if idx is None else idx
                    stack.extend([(c, str(c), j) for c in listing.children(idx[::-1])])
            else:                       # _EXACT
                cstr = _join(pstr, arg)
                st = self.stats.pop(cstr)
                if isinstance(st, BaseException):
                    if not _skipped_by_glob(st):
                        return self._fail(out, st)
                    continue
                if j < self.n and not S_ISDIR(st.st_mode):
                    continue
                c = _make_child(path, pstr, arg)
                if j >= last:
                    self._emit(out, c)
                else:
                    stack.append((c, cstr, j))
        self.memo = None
        return out or None


class _LimitedSource:
    """A walk whose engine calls hold a limiter's token (a path with a
    limiter), and whose paths carry the limiter."""

    def __init__(self, source: Any, limiter: Any) -> None:
        self.source, self.limiter = source, limiter

    async def next_batch(self) -> Optional[list]:
        from ._limit import run_limited
        batch = await run_limited(self.limiter, self.source.next_batch)
        if batch:
            limiter = self.limiter
            for p in batch:
                p._limiter = limiter
        return batch


class _ListDir:
    """iterdir(): one engine listdir, then its names as Paths."""

    def __init__(self, path: "Path", done: bool = False) -> None:
        self.path = path
        self.done = done

    async def next_batch(self) -> Optional[list]:
        if self.done:
            return None
        names = await _aos.listdir(self.path)
        self.done = True
        return _make_children(self.path, str(self.path), names)


class PathIterator:
    """The async iterator that ``iterdir()``, ``glob()`` and ``rglob()`` return.

    ``async for path in it`` yields linuxaio.Path objects.  Paths arrive in
    batches (a directory's worth), so most steps return without waiting.
    ``it.with_stat()`` yields ``(path, stat_result)`` pairs for the rest."""

    __slots__ = ("_source", "_buf", "_pos")

    def __init__(self, source: Any, limiter: Any = None) -> None:
        self._source = source if limiter is None else _LimitedSource(source, limiter)
        self._buf: list = []
        self._pos = 0

    def __aiter__(self) -> "PathIterator":
        return self

    async def __anext__(self) -> "Path":
        pos = self._pos
        buf = self._buf
        if pos < len(buf):
            self._pos = pos + 1
            return buf[pos]
        batch = await self._source.next_batch()
        if not batch:
            self._buf, self._pos = [], 0
            raise StopAsyncIteration
        self._buf, self._pos = batch, 1
        return batch[0]

    async def aclose(self) -> None:
        """Stop: the next step ends the iteration (nothing is left running)."""
        self._buf, self._pos = [], 0
        self._source = _ListDir(None, done=True)

    async def _batches(self) -> Optional[list]:
        """The rest of the paths, a batch at a time (None at the end)."""
        if self._pos < len(self._buf):
            batch = self._buf[self._pos:]
            self._buf, self._pos = [], 0
            return batch
        return await self._source.next_batch()

    def with_stat(self, *, follow_symlinks: bool = True) -> _walk.StatPairs:
        """An async iterator of (path, stat_result) for the remaining paths.

        The stats are taken in batches (one engine call for up to 1024 paths)
        as the walk goes, not when the pair is used. If a path vanished
        meanwhile, or is a broken symlink (FileNotFoundError, NotADirectoryError,
        ELOOP), its stat_result is None. Any other error is raised, as
        ``await path.stat()`` would raise it."""
        return _walk.StatPairs(self._batches, 0 if follow_symlinks else _NOFOLLOW)


# ----------------------------------------------------------------------- Path

class Path(_pathlib.PurePosixPath, _TreeMethods):
    """A pathlib path whose I/O methods are awaitable and run on the engine.

    ``p / "x"``, ``p.name``, ``p.parent``... are pathlib's, synchronous.
    ``await p.stat()``, ``await p.read_bytes()``, ``async for c in p.iterdir()``,
    ``async for m in p.rglob("*.py")``... do the I/O on linuxaio's engine.
    """

    __slots__ = ("_limiter",)

    if _sys.version_info >= (3, 12):
        def __init__(self, *args: Any, limiter: Any = None) -> None:
            super().__init__(*args)
            # always set: every path (glob's children too) is made here
            self._limiter = limiter if limiter is None else _check_limiter(limiter)

        def with_segments(self, *pathsegments: Any) -> "Path":
            """A path of this class (and limiter) from the segments: what
            every derived path (``/``, ``parent``, ``joinpath``...) is made by."""
            limiter = self._limiter
            if limiter is None:
                return type(self)(*pathsegments)
            return type(self)(*pathsegments, limiter=limiter)
    else:
        def __new__(cls, *args: Any, limiter: Any = None) -> "Path":
            self = super().__new__(cls, *args)
            # (pathlib 3.11 makes derived paths without calling the class:
            # those have no _limiter until _carry_limiter_311's wrappers set it)
            self._limiter = limiter if limiter is None else _check_limiter(limiter)
            return self

    @property
    def limiter(self) -> Any:
        """The limiter this path's requests hold a token of (None: none)."""
        try:
            return self._limiter
        except AttributeError:
            return None

    # -- anyio's coroutines: the current directory, the home directory --

    @classmethod
    async def cwd(cls, *, limiter: Any = None) -> "Path":
        """The current working directory, asked of the engine (realpath(".")
        is what getcwd() gives: the directory, every symlink resolved)."""
        return cls(await _cwd(limiter), limiter=limiter)

    @classmethod
    async def home(cls, *, limiter: Any = None) -> "Path":
        """The user's home directory (os.path.expanduser("~"): $HOME, or the
        password database)."""
        return await cls("~", limiter=limiter).expanduser()

    async def absolute(self) -> "Path":
        """This path made absolute with the current directory; no normalization."""
        if self.is_absolute():
            return self
        return self._new(await _cwd(self.limiter), self)

    async def expanduser(self) -> "Path":
        """This path with a leading ~ or ~user expanded (os.path.expanduser)."""
        parts = self.parts
        if not self.anchor and parts and parts[0][:1] == "~":
            home = _os.path.expanduser(parts[0])
            if home[:1] == "~":
                raise RuntimeError("Could not determine home directory.")
            return self._new(home, *parts[1:])
        return self

    def _new(self, *segments: Any) -> "Path":
        limiter = self.limiter
        if limiter is None:
            return type(self)(*segments)
        return type(self)(*segments, limiter=limiter)

    if _sys.version_info >= (3, 13):
        @classmethod
        def from_uri(cls, uri: str, *, limiter: Any = None) -> "Path":
            """The path of a file: URI (pathlib.Path.from_uri)."""
            return cls(_pathlib.Path.from_uri(uri), limiter=limiter)

    if _sys.version_info < (3, 13):
        def with_stem(self, stem: str) -> "Path":
            """The path with the stem changed; an empty stem with a suffix is
            refused, as 3.13's pathlib (and anyio on every Python) refuse it."""
            suffix = self.suffix
            if not stem and suffix:
                raise ValueError(f"{self!r} has a non-empty suffix")
            return self.with_name(stem + suffix)

    if _sys.version_info >= (3, 12):
        async def is_junction(self) -> bool:
            """Whether this is a Windows junction: never, on Linux (anyio and
            pathlib say False without a system call)."""
            return False

    async def owner(self, *, follow_symlinks: bool = True) -> str:
        """The name of the file's owner: the stat on the engine, the name
        from the password database (a worker thread: NSS may ask a network)."""
        st = await self.stat(follow_symlinks=follow_symlinks)
        import pwd
        return (await _loop.to_thread(pwd.getpwuid, st.st_uid)).pw_name

    async def group(self, *, follow_symlinks: bool = True) -> str:
        """The name of the file's group (as owner())."""
        st = await self.stat(follow_symlinks=follow_symlinks)
        import grp
        return (await _loop.to_thread(grp.getgrgid, st.st_gid)).gr_name

    # -- status --

    async def stat(self, *, follow_symlinks: bool = True) -> _os.stat_result:
        """os.stat(self) on the engine."""
        return await _run(_engine.stat, self, None, 0 if follow_symlinks else _NOFOLLOW)

    async def lstat(self) -> _os.stat_result:
        """os.lstat(self) on the engine."""
        return await _run(_engine.stat, self, None, _NOFOLLOW)

    async def _mode(self, follow_symlinks: bool = True) -> Optional[int]:
        """st_mode, or None where pathlib's is_*() would say False."""
        try:
            st = await _run(_engine.stat, self, None, 0 if follow_symlinks else _NOFOLLOW)
        except OSError as exc:
            if not _ignorable(exc):
                raise
            return None
        except ValueError:      # e.g. an embedded NUL
            return None
        return st.st_mode

    async def exists(self, *, follow_symlinks: bool = True) -> bool:
        """Whether the path exists (False for a broken symlink, unless
        follow_symlinks=False)."""
        return await self._mode(follow_symlinks) is not None

    async def is_dir(self, *, follow_symlinks: bool = True) -> bool:
        mode = await self._mode(follow_symlinks)
        return mode is not None and S_ISDIR(mode)

    async def is_file(self, *, follow_symlinks: bool = True) -> bool:
        mode = await self._mode(follow_symlinks)
        return mode is not None and S_ISREG(mode)

    async def is_symlink(self) -> bool:
        mode = await self._mode(False)
        return mode is not None and S_ISLNK(mode)

    async def is_block_device(self) -> bool:
        mode = await self._mode()
        return mode is not None and S_ISBLK(mode)

    async def is_char_device(self) -> bool:
        mode = await self._mode()
        return mode is not None and S_ISCHR(mode)

    async def is_fifo(self) -> bool:
        mode = await self._mode()
        return mode is not None and S_ISFIFO(mode)

    async def is_socket(self) -> bool:
        mode = await self._mode()
        return mode is not None and S_ISSOCK(mode)

    async def is_mount(self) -> bool:
        """Whether this is a mount point: a directory on another device than
        its parent, or the same inode as its parent (the root)."""
        if not await self.is_dir():
            return False
        st, parent = await _aos.stat_many([self, self.parent], return_exceptions=True)
        if isinstance(parent, OSError):
            return False
        if isinstance(st, BaseException):
            raise st
        return st.st_dev != parent.st_dev or st.st_ino == parent.st_ino

    async def samefile(self, other_path: Any) -> bool:
        """Whether other_path (any path-like) is the same file (os.path.samefile)."""
        st, other = await _aos.stat_many([self, other_path])
        # os.path.samestat's comparison (blockbuster counts that as I/O)
        return st.st_ino == other.st_ino and st.st_dev == other.st_dev

    # -- contents --

    def open(self, mode: str = "r", buffering: int = -1, encoding: Optional[str] = None,
             errors: Optional[str] = None, newline: Optional[str] = None) -> Any:
        """linuxaio.open(self, ...): use ``async with p.open() as f`` or
        ``f = await p.open()``; the file has this path's limiter."""
        if "b" not in mode:
            encoding = _io.text_encoding(encoding)
        from . import open as _open    # the async file objects (linuxaio._file)
        return _open(self, mode, buffering, encoding, errors, newline, limiter=self.limiter)

    async def read_bytes(self) -> bytes:
        """The file's bytes, read by ONE engine request (open, size, read, close)."""
        return await _run(_engine.aio_slurp, self, 0, None)

    async def read_text(self, encoding: Optional[str] = None,
                        errors: Optional[str] = None, newline: Optional[str] = None) -> str:
        """The file decoded as the builtin open(self, "r", newline=newline)
        would (universal newlines by default); the bytes come from one
        engine request."""
        encoding = _io.text_encoding(encoding)
        data = await _run(_engine.aio_slurp, self, 0, None)
        text = _io.TextIOWrapper(_io.BytesIO(data), encoding=encoding, errors=errors,
                                 newline=newline)
        try:
            return text.read()
        finally:
            text.close()

    async def write_bytes(self, data: Any) -> int:
        """Create or truncate the file, write data (any buffer) and close it."""
        view = memoryview(data)     # a non-buffer raises before the file is touched
        if not view.c_contiguous:
            raise BufferError("memoryview: underlying buffer is not C-contiguous")
        if view.format != "B" or view.ndim != 1:
            view = view.cast("B")
        fd = await _aos.open(self, _WRITE_FLAGS, 0o666)
        try:
            await _write_fd(fd, view)
        finally:
            await _loop.shielded(_engine.aio_close, fd)
        return view.nbytes

    async def write_text(self, data: str, encoding: Optional[str] = None,
                         errors: Optional[str] = None, newline: Optional[str] = None) -> int:
        """Create or truncate the file and write data encoded as the builtin
        open(self, "w", ...) would (newline translation, BOMs included)."""
        if not isinstance(data, str):
            raise TypeError(f"data must be str, not {type(data).__name__}")
        encoding = _io.text_encoding(encoding)
        buf = _io.BytesIO()
        text = _io.TextIOWrapper(buf, encoding=encoding, errors=errors, newline=newline)
        n = text.write(data)
        text.flush()
        raw = buf.getvalue()
        text.detach()
        fd = await _aos.open(self, _WRITE_FLAGS, 0o666)
        try:
            await _write_fd(fd, memoryview(raw))
        finally:
            await _loop.shielded(_engine.aio_close, fd)
        return n

    # -- directories --

    def iterdir(self) -> PathIterator:
        """An async iterator over the directory's entries (not . and ..), as
        Paths, in directory order.  One engine request reads the directory, at
        the first step."""
        return PathIterator(_ListDir(self), self.limiter)

    def glob(self, pattern: str, *, case_sensitive: Optional[bool] = None,
             recurse_symlinks: bool = False) -> PathIterator:
        """An async iterator over the existing paths under this one that match
        the relative pattern (``*``, ``?``, ``[seq]``, ``**`` for any depth,
        a trailing ``/`` for directories only), as pathlib's glob.  With
        recurse_symlinks (3.13's), ``**`` descends into symlinked directories
        too (a symlink loop is followed until the path nears PATH_MAX)."""
        return self._glob(pattern, False, case_sensitive, recurse_symlinks)

    def rglob(self, pattern: str, *, case_sensitive: Optional[bool] = None,
              recurse_symlinks: bool = False) -> PathIterator:
        """glob("**/" + pattern): the matches at any depth."""
        return self._glob(pattern, True, case_sensitive, recurse_symlinks)

    def _glob(self, pattern: Any, recursive: bool, case_sensitive: Optional[bool],
              recurse_symlinks: bool = False) -> PathIterator:
        _sys.audit("pathlib.Path.rglob" if recursive else "pathlib.Path.glob", self, pattern)
        if isinstance(pattern, _os.PathLike):
            pattern = _os.fspath(pattern)
        if not isinstance(pattern, str):
            raise TypeError(f"pattern must be str, not {type(pattern).__name__}")
        parts, dedup = _compile_pattern(pattern, recursive,
                                        True if case_sensitive is None else bool(case_sensitive))
        if "\0" in str(self):        # pathlib: is_dir() says False, so no matches
            return PathIterator(_ListDir(self, done=True))
        walk = _GlobWalk(self, parts, dedup, GLOB_BATCH)
        walk.follow = bool(recurse_symlinks)
        return PathIterator(walk, self.limiter)

    async def mkdir(self, mode: int = 0o777, parents: bool = False, exist_ok: bool = False) -> None:
        """Create the directory; with parents, the missing ones above it too;
        with exist_ok, an existing directory is not an error."""
        try:
            await _aos.mkdir(self, mode)
        except FileNotFoundError:
            if not parents or self.parent == self:
                raise
            await self.parent.mkdir(parents=True, exist_ok=True)
            await self.mkdir(mode, parents=False, exist_ok=exist_ok)
        except OSError:
            # not only EEXIST: the system may report EACCES or EROFS first
            if not exist_ok or not await self.is_dir():
                raise

    async def rmdir(self) -> None:
        await _aos.rmdir(self)

    # -- changes --

    async def unlink(self, missing_ok: bool = False) -> None:
        """Remove this file or symlink; with missing_ok, a missing one is fine."""
        try:
            await _aos.unlink(self)
        except FileNotFoundError:
            if not missing_ok:
                raise

    async def rename(self, target: Any) -> "Path":
        """rename(2) to target (relative to the current directory, not to
        this path's); returns the new Path."""
        await _aos.rename(self, target)
        return self._new(target)

    async def replace(self, target: Any) -> "Path":
        """As rename(): an existing target file is replaced."""
        await _aos.replace(self, target)
        return self._new(target)

    async def touch(self, mode: int = 0o666, exist_ok: bool = True) -> None:
        """Create the file if missing; if it exists, set its times to now
        (with exist_ok) or raise FileExistsError."""
        if exist_ok:
            try:
                await _aos.utime(self, None)
            except OSError:
                pass
            else:
                return
        fd = await _aos.open(self, _os.O_CREAT | _os.O_WRONLY | (0 if exist_ok else _os.O_EXCL),
                             mode)
        await _loop.shielded(_engine.aio_close, fd)

    async def chmod(self, mode: int, *, follow_symlinks: bool = True) -> None:
        """chmod(2).  With follow_symlinks=False, as os.chmod on Linux: a
        symlink raises NotImplementedError, anything else has its mode set."""
        if follow_symlinks:
            await _aos.chmod(self, mode)
            return
        # What glibc's fchmodat(AT_SYMLINK_NOFOLLOW) does, without a race:
        # hold the file itself (O_PATH, not following a symlink), then change
        # the mode through its /proc/self/fd link.
        fd = await _aos.open(self, _os.O_PATH | _os.O_NOFOLLOW)
        try:
            if S_ISLNK((await _aos.fstat(fd)).st_mode):
                raise NotImplementedError("chmod: follow_symlinks unavailable on this platform")
            try:
                await _aos.chmod(f"/proc/self/fd/{fd}", mode)
            except FileNotFoundError:       # no /proc
                raise NotImplementedError(
                    "chmod: follow_symlinks unavailable on this platform") from None
        finally:
            await _loop.shielded(_engine.aio_close, fd)

    async def lchmod(self, mode: int) -> None:
        """chmod without following a symlink: NotImplementedError on Linux, as in os."""
        await self.chmod(mode, follow_symlinks=False)

    # -- links --

    async def readlink(self) -> "Path":
        """The target of this symlink, as a Path."""
        return self._new(await _aos.readlink(self))

    async def symlink_to(self, target: Any, target_is_directory: bool = False) -> None:
        """Make this path a symlink to target (os.symlink(target, self))."""
        await _aos.symlink(target, self, target_is_directory)

    async def hardlink_to(self, target: Any) -> None:
        """Make this path a hard link to target (os.link(target, self))."""
        await _aos.link(target, self)

    async def resolve(self, strict: bool = False) -> "Path":
        """The absolute path with every symlink, '.' and '..' resolved.

        Strict: a missing component raises (FileNotFoundError...).  Not
        strict: the part that does not exist is appended as it is, like
        os.path.realpath.  A symlink loop raises RuntimeError, as in pathlib.
        The common case is one engine request (realpath(3)); a path that it
        cannot resolve is walked component by component (lstat, readlink)."""
        s = str(self)
        if not s.startswith("/"):
            s = _join(await _cwd(None), s)
        try:
            return self._new(await _aos.realpath(s))
        except OSError:
            pass
        try:
            resolved = await _resolve_walk(s, strict)
        except OSError as exc:
            if exc.errno == ELOOP:
                raise RuntimeError(f"Symlink loop from {exc.filename!r}") from None
            raise
        if not strict:
            try:
                await _aos.stat(resolved)
            except OSError as exc:
                if exc.errno == ELOOP:
                    raise RuntimeError(f"Symlink loop from {exc.filename!r}") from None
        return self._new(resolved)


async def _cwd(limiter: Any) -> str:
    """os.getcwd(), asked of the engine: realpath(".")."""
    if limiter is not None:
        from ._limit import run_limited
        return await run_limited(limiter, _aos.realpath, ".")
    return await _aos.realpath(".")


def _check_limiter(limiter: Any) -> Any:
    from ._limit import check
    return check(limiter)


async def _resolve_walk(path: str, strict: bool) -> str:
    """os.path.realpath of the absolute path, component by component on the
    engine: lstat each prefix, follow symlinks with readlink.  Not strict: a
    component that cannot be lstat'ed is kept as it is; after _MAX_SYMLINKS
    links the rest is left unresolved (the caller's stat then finds the loop)."""
    todo = path.split("/")
    todo.reverse()             # pop() gives the next component
    done: list = []
    links = 0
    while todo:
        name = todo.pop()
        if not name or name == ".":
            continue
        if name == "..":
            if done:
                done.pop()
            continue
        cand = "/" + "/".join(done + [name])
        try:
            st = await _aos.lstat(cand)
        except OSError:
            if strict:
                raise
            done.append(name)
            continue
        if not S_ISLNK(st.st_mode):
            done.append(name)
            continue
        links += 1
        if links > _MAX_SYMLINKS:
            if strict:
                raise OSError(ELOOP, _os.strerror(ELOOP), cand)
            todo.reverse()
            return "/".join([cand] + todo)
        target = await _aos.readlink(cand)
        if target.startswith("/"):
            done = []
        todo.extend(reversed(target.split("/")))
    return "/" + "/".join(done)


_make_children = _children_factory()


def _limit_path_methods() -> None:
    """Each coroutine method of Path runs under the path's limiter."""
    import inspect
    from ._limit import limited_method
    for name, value in list(vars(Path).items()):
        if inspect.iscoroutinefunction(value) and name not in ("absolute",):
            setattr(Path, name, limited_method(value))


_limit_path_methods()


def _stat_runners() -> None:
    """p.stat() and p.lstat() through C runners (src/engine/runner.c), as
    linuxaio.os.stat: the request itself is the awaitable, with neither the
    limiter's wrapper nor the method's coroutine (two coroutines: ~0.5 us of
    a cached stat's ~2 us await; W7 awaits one per path).  A path with a
    limiter, or a call with a keyword, goes to the limited async def."""
    Path.stat = _engine._bind(Path.stat, _engine.stat, 1, (None, 0), True, "_limiter")
    Path.lstat = _engine._bind(Path.lstat, _engine.stat, 1, (None, _NOFOLLOW), True, "_limiter")


_stat_runners()
_engine._set_path_type(Path)   # its string read without a Python call (args.c)


def _carry_limiter_311() -> None:
    """Python 3.11's pathlib makes derived paths without calling the class
    (no with_segments): these carry the limiter over by hand, None too (the
    stat runner's guard reads the slot: unset, it costs an AttributeError,
    ~0.4 us of each `await (p / name).stat()`)."""
    def carry(method: Callable[..., Any]) -> Callable[..., Any]:
        @_functools.wraps(method)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            result = method(self, *args, **kwargs)
            if isinstance(result, Path):
                result._limiter = getattr(self, "_limiter", None)
            return result
        return wrapper

    def carry_r(method: Callable[..., Any]) -> Callable[..., Any]:
        @_functools.wraps(method)
        def wrapper(self: Any, other: Any) -> Any:
            result = method(self, other)
            if isinstance(result, Path):
                result._limiter = getattr(self, "_limiter", None)
            return result
        return wrapper

    for name in ("__truediv__", "joinpath", "with_name", "with_suffix", "relative_to"):
        setattr(Path, name, carry(getattr(_pathlib.PurePosixPath, name)))
    Path.__rtruediv__ = carry_r(_pathlib.PurePosixPath.__rtruediv__)
    Path.parent = property(carry(_pathlib.PurePosixPath.parent.fget))

    def parents(self: Any) -> Any:
        """The logical ancestors (a tuple here, carrying the limiter)."""
        ps = tuple(_pathlib.PurePosixPath.parents.fget(self))
        limiter = getattr(self, "_limiter", None)
        for p in ps:
            p._limiter = limiter
        return ps
    Path.parents = property(parents)


if _sys.version_info < (3, 12):
    _carry_limiter_311()
