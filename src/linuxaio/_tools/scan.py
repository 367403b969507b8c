"""``linuxaio scan PATH...``: total a tree as ``du -s`` does, in parallel.

The walk lists a level of directories in one engine call (scandir_at, raw
d_types: nothing followed) and lstats every entry of it in chunks, all in
flight at once.  Symlinks are never followed.

Counts: files (regular files, each name), dirs (every directory, the roots
included), symlinks, other (FIFOs, sockets, devices); apparent_bytes, the
sum of st_size of the files; allocated_bytes, the sum of st_blocks * 512
over every entry under and including the roots, each hard-linked inode
once (du -s -B1); errors, the entries that could not be read (a directory
that could not be listed, an entry that could not be lstat'ed)."""
from __future__ import annotations

import os
import stat
import sys
import time
TYPE_CHECKING = False
if TYPE_CHECKING:     # typing costs ms at start-up: the CLI tools avoid it
    import argparse
    from typing import Any, Optional

from . import progress as _progress

STAT_CHUNK = 2048


class Totals:
    def __init__(self) -> None:
        self.files = self.dirs = self.symlinks = self.other = 0
        self.apparent = self.allocated = self.errors = 0
        self.entries = 0
        self.seen: set = set()               # (dev, ino) of hard-linked inodes
        self.top_files: list = []            # heap of (size, path)
        self.dir_sizes: dict = {}            # dir index -> [path, parent index, apparent bytes]
        self.ext: dict = {}                  # extension -> [files, bytes]
        self.error_list: list = []

    def add(self, path: Any, st: os.stat_result, dir_index: int, top: int, by_ext: bool) -> None:
        self.entries += 1
        fmt = st.st_mode & 0o170000
        if st.st_nlink > 1 and fmt != _S_IFDIR:
            key = (st.st_dev, st.st_ino)
            if key not in self.seen:
                self.seen.add(key)
                self.allocated += st.st_blocks * 512
        else:
            self.allocated += st.st_blocks * 512
        if fmt == _S_IFREG:
            self.files += 1
            size = st.st_size
            self.apparent += size
            if dir_index >= 0:
                self.dir_sizes[dir_index][2] += size
            if top:
                import heapq
                if len(self.top_files) < top:
                    heapq.heappush(self.top_files, (size, path))
                elif size > self.top_files[0][0]:
                    heapq.heapreplace(self.top_files, (size, path))
            if by_ext:
                name = os.path.basename(path)
                dot = name.rfind(".")
                ext = name[dot:].lower() if dot > 0 else ""
                e = self.ext.get(ext)
                if e is None:
                    self.ext[ext] = [1, size]
                else:
                    e[0] += 1
                    e[1] += size
        elif fmt == _S_IFDIR:
            self.dirs += 1
        elif fmt == _S_IFLNK:
            self.symlinks += 1
        else:
            self.other += 1


_S_IFREG, _S_IFDIR, _S_IFLNK = stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK


def scan(roots: list, top: int = 0, by_ext: bool = False,
         progress: Optional[Any] = None) -> Totals:
    """Total the trees under roots.  Driven by the callback API and flush()
    (no event loop: a command that starts in a few ms).  A level of the
    tree is listed by scandir_stat requests (one per directory: its listing
    and every entry's lstat), DIRS_PER_BATCH per batch, each batch's
    results totalled by its callback while the workers read the next."""
    from .. import _engine
    from .._tree import NOFOLLOW, named
    t = Totals()
    level: list = []      # (path, dir index)
    sts = _batch(_engine, "stat", [(r, None, NOFOLLOW) for r in roots])
    for r, st in zip(roots, sts):
        if isinstance(st, BaseException):
            t.errors += 1
            t.error_list.append(str(named(st, r)))
            continue
        idx = -1
        if stat.S_ISDIR(st.st_mode):
            idx = len(t.dir_sizes)
            t.dir_sizes[idx] = [r, -1, 0]
            level.append((r, idx))
        t.add(r, st, idx, top, by_ext)
    add, S_ISDIR = t.add, stat.S_ISDIR
    while level:
        nxt: list = []

        def totals(dirs: list, results: list) -> None:
            for (p, idx), res in zip(dirs, results):
                if isinstance(res, BaseException):
                    t.errors += 1
                    t.error_list.append(str(named(res, p)))
                    continue
                pre = p + ("/" if not p.endswith("/") else "")
                for name, _type, st in res:
                    path = pre + name
                    if type(st) is int:
                        t.errors += 1
                        t.error_list.append(f"{path}: {os.strerror(st)}")
                        continue
                    if S_ISDIR(st.st_mode):
                        sub = len(t.dir_sizes)
                        t.dir_sizes[sub] = [path, idx, 0]
                        nxt.append((path, sub))
                        add(path, st, sub, top, by_ext)
                    else:
                        add(path, st, idx, top, by_ext)
            if progress is not None:
                progress(t)

        for k in range(0, len(level), DIRS_PER_BATCH):
            dirs = level[k:k + DIRS_PER_BATCH]
            _engine.submit_many("scandir_stat", [(p, None) for p, _ in dirs],
                                lambda res, dirs=dirs: totals(dirs, res))
        _engine.flush()
        level = nxt
    return t


DIRS_PER_BATCH = 8


def scan_totals(roots: list, progress: Optional[Any] = None) -> Totals:
    """The totals alone (no --top, no --ext), added up by the workers: one
    scandir_totals request per directory (ops_tree.c) returns its sums,
    its subdirectories' names and its hard-linked entries' (dev, ino,
    bytes), so Python handles a few objects per directory instead of a
    stat_result per entry.  A directory's subdirectories are submitted from
    its batch's callback, without waiting for the rest of its level (the
    workers never idle at a level's end: a cold tree's reads overlap)."""
    from .. import _engine
    t = Totals()
    first: list = []
    sts = _batch(_engine, "stat", [(r, None, _engine.AT_SYMLINK_NOFOLLOW) for r in roots])
    for r, st in zip(roots, sts):
        if isinstance(st, BaseException):
            t.errors += 1
            t.error_list.append(str(_named(st, r)))
            continue
        t.add(r, st, -1, 0, False)
        if stat.S_ISDIR(st.st_mode):
            first.append(r)
    seen = t.seen
    submit = _engine.submit_many

    def submit_dirs(paths: list) -> None:
        for k in range(0, len(paths), DIRS_PER_BATCH):
            dirs = paths[k:k + DIRS_PER_BATCH]
            submit("scandir_totals", [(p, None) for p in dirs], lambda res, dirs=dirs: totals(dirs, res))

    def totals(dirs: list, results: list) -> None:
        nxt = []
        for p, res in zip(dirs, results):
            if isinstance(res, BaseException):
                t.errors += 1
                t.error_list.append(str(_named(res, p)))
                continue
            files, ndirs, links, other, apparent, allocated, subdirs, linked, failed = res
            t.files += files
            t.dirs += ndirs
            t.symlinks += links
            t.other += other
            t.apparent += apparent
            t.allocated += allocated
            t.entries += files + ndirs + links + other + len(failed)
            pre = p if p.endswith("/") else p + "/"
            nxt += [pre + name for name in subdirs]
            for dev, ino, nbytes in linked:
                if (dev, ino) not in seen:
                    seen.add((dev, ino))
                    t.allocated += nbytes
            for name, err in failed:
                t.errors += 1
                t.error_list.append(f"{pre}{name}: {os.strerror(err)}")
        if nxt:
            submit_dirs(nxt)
        if progress is not None:
            progress(t)

    submit_dirs(first)
    _engine.flush()       # until every request, those submitted by callbacks included, is done
    return t


def _batch(engine: Any, name: str, args: list) -> list:
    out: list = []
    if args:
        engine.submit_many(name, args, out.extend)
        engine.flush()
    return out


def _named(exc: BaseException, path: Any) -> BaseException:
    from .._tree import named      # only on failures: the scan itself never imports _tree
    return named(exc, path)


def dir_totals(t: Totals) -> list:
    """(apparent bytes under it, path) of every directory: its files' sizes
    added up the tree (a child's index is always after its parent's)."""
    sizes = t.dir_sizes
    for idx in sorted(sizes, reverse=True):
        path, parent, size = sizes[idx]
        if parent >= 0:
            sizes[parent][2] += size
    return [(size, path) for path, _, size in sizes.values()]


def to_json(value: Any) -> str:
    """json.dumps(value), to the byte, for what --json prints (dicts, lists,
    str, int, float): the json package's five files (with _json's shared
    object) would be read at every start of a command timed against du."""
    if isinstance(value, str):
        if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
            return '"' + value + '"'          # (most paths: nothing to escape)
        return '"' + "".join(map(_json_char, value)) + '"'
    if isinstance(value, dict):
        return "{" + ", ".join(to_json(str(k)) + ": " + to_json(v) for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(to_json(v) for v in value) + "]"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    raise TypeError(f"not written as JSON here: {type(value).__name__}")


def _json_char(ch: str) -> str:
    if " " <= ch <= "~":
        return _JSON_SHORT.get(ch, ch)
    short = _JSON_SHORT.get(ch)
    if short is not None:
        return short
    n = ord(ch)
    if n < 0x10000:
        return "\\u%04x" % n
    n -= 0x10000        # a surrogate pair, as json's ensure_ascii writes it
    return "\\u%04x\\u%04x" % (0xD800 | (n >> 10), 0xDC00 | (n & 0x3FF))


_JSON_SHORT = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b",
               "\f": "\\f"}


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("scan", help="total a tree in parallel (du -s, with counts)",
                       description="Walk each PATH in parallel (symlinks are not followed) and print "
                       "its totals: files, directories, symlinks, other entries, apparent bytes "
                       "(sum of the files' sizes) and allocated bytes (st_blocks * 512 of every "
                       "entry, hard links counted once, as du -s -B1). Exit status: 0, or 1 if "
                       "some entries could not be read, 2 for bad usage.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="directories (or files) to total")
    p.add_argument("--top", type=int, default=0, metavar="N",
                   help="also list the N largest files and the N largest directories (by the "
                   "apparent bytes under them)")
    p.add_argument("--ext", action="store_true", help="also total the files per extension")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object: files, dirs, symlinks, other, apparent_bytes, "
                   "allocated_bytes, errors (integers), seconds, and top_files, top_dirs, "
                   "extensions, error_messages")
    p.add_argument("--quiet", action="store_true",
                   help="no progress line (there is none when stderr is not a terminal)")
    return p


def main(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.top < 0:
        parser.error("--top must be >= 0")
    bar = _progress.Line(quiet=args.quiet)
    start = time.perf_counter()

    def tick(t: Totals) -> None:
        bar.show(lambda el: f"scan: {t.entries:,} entries ({t.entries / max(el, 1e-9):,.0f}/s), "
                            f"{human(t.apparent)}")

    roots = [os.fsdecode(p) if isinstance(p, bytes) else p for p in args.paths]
    try:
        if args.top or args.ext:
            t = scan(roots, args.top, args.ext, tick if bar.live else None)
        else:
            t = scan_totals(roots, tick if bar.live else None)
    except KeyboardInterrupt:
        bar.clear()
        return 130
    bar.clear()
    seconds = time.perf_counter() - start
    top_files = sorted(t.top_files, reverse=True)
    top_dirs = []
    if args.top:
        import heapq
        top_dirs = heapq.nlargest(args.top, dir_totals(t))
    exts = sorted(t.ext.items(), key=lambda kv: -kv[1][1])
    if args.json:
        out = {"paths": roots, "files": t.files, "dirs": t.dirs, "symlinks": t.symlinks,
               "other": t.other, "apparent_bytes": t.apparent, "allocated_bytes": t.allocated,
               "errors": t.errors, "seconds": round(seconds, 6),
               "top_files": [{"path": p, "bytes": s} for s, p in top_files],
               "top_dirs": [{"path": p, "bytes": s} for s, p in top_dirs],
               "extensions": {e: {"files": n, "bytes": b} for e, (n, b) in exts},
               "error_messages": t.error_list[:100]}
        print(to_json(out))
    else:
        print(f"{' '.join(roots)}: {t.files:,} files, {t.dirs:,} dirs, {t.symlinks:,} symlinks, "
              f"{t.other:,} other")
        print(f"  apparent {t.apparent:,} bytes ({human(t.apparent)}), allocated "
              f"{t.allocated:,} bytes ({human(t.allocated)}), in {seconds:.3f} s")
        if top_files:
            print("  largest files:")
            for s, p in top_files:
                print(f"    {human(s):>10}  {p}")
        if top_dirs:
            print("  largest directories:")
            for s, p in top_dirs:
                print(f"    {human(s):>10}  {p}")
        if args.ext:
            print("  per extension:")
            for e, (n, b) in exts:
                print(f"    {e or '(none)':12} {n:>9,} files {human(b):>10}")
        if t.errors:
            print(f"  {t.errors} entries could not be read:")
            for m in t.error_list[:20]:
                print(f"    {m}")
    if t.errors:
        print(f"linuxaio scan: {t.errors} entries could not be read", file=sys.stderr)
        return 1
    return 0
