"""``linuxaio copy SRC DST``: a parallel tree copy, as ``rsync -a SRC/ DST/``.

DST itself becomes the copy of SRC (not DST/basename(SRC)), also when it
exists.  Kept: modes, owners (when permitted), times to the nanosecond,
symlinks, hard links (within SRC), FIFOs; data by reflink where the
filesystem can, else inside the kernel (src/engine/ops_copy.c).  Each file
is written under a temporary name beside its final one and renamed when
complete, so nothing half-written is ever under a final name; an
interrupted copy re-run with --update finishes the job.

The source is walked first (listings and lstats in batches), then the
directories are made level by level, then the files copied CHUNK at a
time in parallel, then the links, and last the directories' own metadata,
deepest first."""
from __future__ import annotations

import argparse
import os
import stat
import sys
import time
TYPE_CHECKING = False
if TYPE_CHECKING:     # typing costs ms at start-up: the CLI tools avoid it
    from typing import Any

from . import progress as _progress

TMP_PREFIX = ".linuxaio-copy."     # + the final name: one per name, reused by a re-run


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("copy", help="copy a tree in parallel (rsync -a SRC/ DST/)",
                       description="Copy SRC to DST in parallel: DST itself becomes the copy of "
                       "SRC (as rsync -a SRC/ DST/; not DST/basename(SRC) as cp does), also when DST "
                       "exists. Modes, owners (when permitted), times, symlinks and hard links are "
                       "kept; file data moves by reflink where the filesystem can, else inside the "
                       "kernel. Each file is written under a temporary name and renamed when "
                       "complete. Exit status: 0 when everything was copied, 1 when some entries "
                       "failed (listed at the end), 2 for bad usage.")
    p.add_argument("src", metavar="SRC", help="the directory (or file) to copy")
    p.add_argument("dst", metavar="DST", help="what becomes its copy")
    p.add_argument("--update", action="store_true",
                   help="skip files whose copy in DST already has the same size and mtime "
                   "(re-run an interrupted copy)")
    p.add_argument("--verify", action="store_true",
                   help="re-read every copied file and compare it with its source")
    p.add_argument("--no-reflink", action="store_true",
                   help="always copy the data (never share extents with a reflink)")
    p.add_argument("--quiet", action="store_true",
                   help="no progress bar (there is none when stderr is not a terminal)")
    return p


class Entry:
    __slots__ = ("rel", "st", "depth")

    def __init__(self, rel: str, st: os.stat_result, depth: int) -> None:
        self.rel, self.st, self.depth = rel, st, depth


class Copier:
    def __init__(self, src: str, dst: str, update: bool, verify: bool, reflink: bool,
                 bar: _progress.Line) -> None:
        self.src, self.dst = src, dst
        self.update, self.verify, self.reflink = update, verify, reflink
        self.bar = bar
        self.failures: list = []
        self.entries: list = []
        self.total_bytes = self.done_bytes = 0
        self.total_files = self.done_files = 0
        self.skipped = 0
        self.hows: dict = {}

    def fail(self, path: str, exc: Any) -> None:
        msg = getattr(exc, "strerror", None) or str(exc)
        self.failures.append(f"{path}: {msg}")

    def s(self, rel: str) -> str:
        return self.src if not rel else self.src + "/" + rel

    def d(self, rel: str) -> str:
        return self.dst if not rel else self.dst + "/" + rel

    def tmp(self, rel: str) -> str:
        head, _, name = rel.rpartition("/")
        return self.d((head + "/" if head else "") + TMP_PREFIX + name)

    def tick(self, force: bool = False) -> None:
        def text(el: float) -> str:
            rate = self.done_bytes / max(el, 1e-9)
            left = _progress.eta(self.done_bytes, self.total_bytes, el)
            frac = self.done_bytes / self.total_bytes if self.total_bytes else 1.0
            return (f"copy {_progress.bar(frac)} {_human(self.done_bytes)}/{_human(self.total_bytes)} "
                    f"{self.done_files:,}/{self.total_files:,} files {_human(rate)}/s"
                    + (f" ETA {left:.0f} s" if left is not None else ""))
        self.bar.show(text, force)

    async def walk(self) -> None:
        """The source, a level per batch of scandir_stat requests (a
        directory's listing and the lstat of each entry in one)."""
        from .._tree import batch
        level = [""]
        depth = 0
        while level:
            depth += 1
            lists = await batch("scandir_stat", [(self.s(r), None) for r in level])
            nxt = []
            for r, res in zip(level, lists):
                if isinstance(res, BaseException):
                    self.fail(self.s(r), res)
                    continue
                for name, _type, st in res:
                    rel = (r + "/" + name) if r else name
                    if type(st) is int:
                        self.fail(self.s(rel), os.strerror(st))
                        continue
                    self.entries.append(Entry(rel, st, depth))
                    if stat.S_ISDIR(st.st_mode):
                        nxt.append(rel)
                    elif stat.S_ISREG(st.st_mode):
                        self.total_bytes += st.st_size
                        self.total_files += 1
            level = nxt
            self.tick()

    async def run(self) -> None:
        from .. import _tree
        from .._tree import batch
        root = await batch("stat", [(self.src, None, 0)])
        if isinstance(root[0], BaseException):
            raise root[0]
        root_st = root[0]
        await self.walk()
        # the destination's directories, top-down (mode 0700 for now: the
        # final modes come last, when nothing more is written into them)
        made = await batch("mkdir", [(self.dst, 0o700, None)])
        if isinstance(made[0], FileExistsError) and os.path.isdir(self.dst):
            made = [0]
        if isinstance(made[0], BaseException):
            self.fail(self.dst, made[0])
            return
        dirs = [e for e in self.entries if stat.S_ISDIR(e.st.st_mode)]
        bad_dirs: set = set()
        by_depth: dict = {}
        for e in dirs:
            by_depth.setdefault(e.depth, []).append(e)
        for depth in sorted(by_depth):
            todo = [e for e in by_depth[depth] if _parent(e.rel) not in bad_dirs]
            bad_dirs.update(e.rel for e in by_depth[depth] if _parent(e.rel) in bad_dirs)
            res = await batch("mkdir", [(self.d(e.rel), 0o700, None) for e in todo])
            for e, r in zip(todo, res):
                if isinstance(r, FileExistsError) and os.path.isdir(self.d(e.rel)) \
                        and not os.path.islink(self.d(e.rel)):
                    continue
                if isinstance(r, BaseException):
                    self.fail(self.d(e.rel), r)
                    bad_dirs.add(e.rel)
        live = [e for e in self.entries if _parent(e.rel) not in bad_dirs]
        # files: the first name of each hard-linked inode is copied, the
        # others linked to its copy afterwards
        files, links, inodes = [], [], {}
        for e in live:
            if not stat.S_ISREG(e.st.st_mode):
                continue
            if e.st.st_nlink > 1:
                key = (e.st.st_dev, e.st.st_ino)
                first = inodes.setdefault(key, e)
                if first is not e:
                    links.append((e, first))
                    continue
            files.append(e)
        if self.update:
            files = await self.changed(files)
        meta = _tree.META_MODE | _tree.META_OWNER | _tree.META_TIMES | (0 if self.reflink else _tree.NO_CLONE)

        def done(job: Any) -> None:
            if job.error is None:
                self.done_bytes += job.nbytes
                self.done_files += 1
                self.hows[job.how] = self.hows.get(job.how, 0) + 1
            self.tick()

        for k in range(0, len(files), _tree.CHUNK):
            chunk = files[k:k + _tree.CHUNK]
            jobs = [_tree.FileCopy(self.s(e.rel), self.tmp(e.rel), e) for e in chunk]
            await _tree.copy_files(jobs, meta, xattrs=True, mode=0o600, done=done)
            ok = [j for j in jobs if j.error is None]
            for j in jobs:
                if j.error is not None:
                    self.fail(j.src, j.error)
            # a source changed while being copied keeps the mtime it had
            # when read; renamed into place only when complete
            res = await batch("rename", [(j.dst, self.d(j.tag.rel), None, None) for j in ok])
            for j, r in zip(ok, res):
                if isinstance(r, BaseException):
                    self.fail(self.d(j.tag.rel), r)
                    await batch("unlink", [(j.dst, None)])
            if self.verify:
                for j, r in zip(ok, res):
                    if not isinstance(r, BaseException) and not await _same_data(j.src, self.d(j.tag.rel)):
                        self.fail(self.d(j.tag.rel), "differs from its source after the copy (--verify)")
        await self.hard_links(links)
        await self.others(live)
        await self.dir_meta(dirs, bad_dirs, root_st)
        self.tick(force=True)

    async def changed(self, files: list) -> list:
        """--update: the files whose copy is missing, or differs in size or mtime."""
        from .._tree import NOFOLLOW, batch
        sts = await batch("stat", [(self.d(e.rel), None, NOFOLLOW) for e in files])
        out = []
        for e, st in zip(files, sts):
            if (not isinstance(st, BaseException) and stat.S_ISREG(st.st_mode)
                    and st.st_size == e.st.st_size and st.st_mtime_ns == e.st.st_mtime_ns):
                self.skipped += 1
                self.total_bytes -= e.st.st_size
                self.total_files -= 1
                continue
            out.append(e)
        return out

    async def hard_links(self, links: list) -> None:
        from .._tree import batch
        if not links:
            return
        if self.update:      # already the same inode as its first name's copy: nothing to do
            sts = await batch("stat", [(self.d(e.rel), None, 0x100) for e, _ in links])
            firsts = await batch("stat", [(self.d(f.rel), None, 0x100) for _, f in links])
            links = [(e, f) for (e, f), a, b in zip(links, sts, firsts)
                     if isinstance(a, BaseException) or isinstance(b, BaseException)
                     or (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino)]
        tmps = [self.tmp(e.rel) for e, _ in links]
        await batch("unlink", [(t, None) for t in tmps])
        res = await batch("link", [(self.d(f.rel), t, None, None, 0) for (_, f), t in zip(links, tmps)])
        ok = []
        for (e, f), t, r in zip(links, tmps, res):
            if isinstance(r, BaseException):
                self.fail(self.d(e.rel), r)
            else:
                ok.append((e, t))
        res = await batch("rename", [(t, self.d(e.rel), None, None) for e, t in ok])
        for (e, t), r in zip(ok, res):
            if isinstance(r, BaseException):
                self.fail(self.d(e.rel), r)
            else:
                self.done_files += 1

    async def others(self, live: list) -> None:
        """Symlinks (their own owner and times), FIFOs and devices."""
        from .._tree import NOFOLLOW, batch
        syms = [e for e in live if stat.S_ISLNK(e.st.st_mode)]
        targets = await batch("readlink", [(self.s(e.rel), None) for e in syms])
        made = []
        for e, t in zip(syms, targets):
            if isinstance(t, BaseException):
                self.fail(self.s(e.rel), t)
                continue
            if self.update:
                try:
                    if os.readlink(self.d(e.rel)) == t:
                        made.append(e)
                        continue
                except OSError:
                    pass
            made.append((e, t))
        new = [m for m in made if isinstance(m, tuple)]
        await batch("unlink", [(self.tmp(e.rel), None) for e, _ in new])
        res = await batch("symlink", [(t, self.tmp(e.rel), None) for e, t in new])
        ok = []
        for (e, _), r in zip(new, res):
            if isinstance(r, BaseException):
                self.fail(self.d(e.rel), r)
            else:
                ok.append(e)
        res = await batch("rename", [(self.tmp(e.rel), self.d(e.rel), None, None) for e in ok])
        done = [m for m in made if not isinstance(m, tuple)]
        for e, r in zip(ok, res):
            if isinstance(r, BaseException):
                self.fail(self.d(e.rel), r)
            else:
                done.append(e)
        await self.owners(done)
        res = await batch("utime", [(self.d(e.rel), (e.st.st_atime_ns, e.st.st_mtime_ns), None, NOFOLLOW)
                                    for e in done])
        for e, r in zip(done, res):
            if isinstance(r, BaseException):
                self.fail(self.d(e.rel), r)
        for e in live:
            m = e.st.st_mode
            if stat.S_ISFIFO(m) or stat.S_ISCHR(m) or stat.S_ISBLK(m):
                path, tmp = self.d(e.rel), self.tmp(e.rel)
                try:
                    if self.update and os.path.exists(path):
                        cur = os.lstat(path)
                        if stat.S_IFMT(cur.st_mode) == stat.S_IFMT(m) and cur.st_rdev == e.st.st_rdev:
                            continue
                    try:
                        os.unlink(tmp)
                    except FileNotFoundError:
                        pass
                    if stat.S_ISFIFO(m):
                        os.mkfifo(tmp, 0o600)
                    else:
                        os.mknod(tmp, 0o600 | stat.S_IFMT(m), e.st.st_rdev)
                    try:
                        os.lchown(tmp, e.st.st_uid, e.st.st_gid)
                    except PermissionError:
                        pass
                    os.chmod(tmp, stat.S_IMODE(m))
                    os.utime(tmp, ns=(e.st.st_atime_ns, e.st.st_mtime_ns), follow_symlinks=False)
                    os.rename(tmp, path)
                except OSError as exc:
                    self.fail(path, exc)
            elif stat.S_ISSOCK(m):
                self.fail(self.s(e.rel), "a socket: not copied")

    async def dir_meta(self, dirs: list, bad: set, root_st: os.stat_result) -> None:
        """Owner, mode and times of every directory made, deepest first (a
        directory's times change while entries are made in it)."""
        from .._tree import batch
        todo = [e for e in dirs if e.rel not in bad]
        todo.sort(key=lambda e: -e.depth)
        todo.append(Entry("", root_st, 0))
        await self.owners(todo)
        res = await batch("chmod", [(self.d(e.rel), stat.S_IMODE(e.st.st_mode), None, 0) for e in todo])
        res2 = await batch("utime", [(self.d(e.rel), (e.st.st_atime_ns, e.st.st_mtime_ns), None, 0)
                                     for e in todo])
        for e, r, r2 in zip(todo, res, res2):
            for x in (r, r2):
                if isinstance(x, BaseException):
                    self.fail(self.d(e.rel), x)
                    break


    async def owners(self, entries: list) -> None:
        """lchown each copy to its source's owner, by one batch (EPERM, an
        unprivileged copy, is no failure: the copy keeps its own owner)."""
        from .._tree import NOFOLLOW, batch, named
        res = await batch("chown", [(self.d(e.rel), e.st.st_uid, e.st.st_gid, None, NOFOLLOW)
                                    for e in entries])
        for e, r in zip(entries, res):
            if isinstance(r, BaseException) and not isinstance(r, PermissionError):
                self.fail(self.d(e.rel), named(r, self.d(e.rel)))


def _parent(rel: str) -> str:
    return rel.rpartition("/")[0]


async def _same_data(a: str, b: str) -> bool:
    from .. import _engine
    from .._loop import run
    fa = await run(_engine.open, a, os.O_RDONLY, 0, None)
    try:
        fb = await run(_engine.open, b, os.O_RDONLY, 0, None)
    except OSError:
        await run(_engine.close, fa)
        return False
    try:
        off = 0
        step = 1 << 20
        while True:
            x = await run(_engine.pread, fa, step, off)
            y = await run(_engine.pread, fb, step, off)
            if x != y:
                return False
            if not x:
                return True
            off += len(x)
    finally:
        await run(_engine.close, fa)
        await run(_engine.close, fb)


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def main(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .._loop import run_main
    src = args.src.rstrip("/") or "/"
    dst = args.dst.rstrip("/") or "/"
    try:
        st = os.stat(src)
    except OSError as exc:
        parser.error(f"SRC {args.src}: {exc.strerror}")
    if not stat.S_ISDIR(st.st_mode):
        parser.error(f"SRC {args.src}: not a directory")
    rs, rd = os.path.realpath(src), os.path.realpath(dst)
    if rd == rs or rd.startswith(rs.rstrip("/") + "/"):
        parser.error(f"DST {args.dst} is SRC or inside it")
    try:
        # a wide tree keeps many files open at once
        import resource
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass
    bar = _progress.Line(quiet=args.quiet)
    c = Copier(src, dst, args.update, args.verify, not args.no_reflink, bar)
    start = time.monotonic()
    try:
        run_main(c.run())
    except KeyboardInterrupt:
        bar.clear()
        print("linuxaio copy: interrupted; re-run with --update to finish", file=sys.stderr)
        return 130
    except OSError as exc:
        bar.clear()
        print(f"linuxaio copy: {exc}", file=sys.stderr)
        return 1
    bar.clear()
    el = time.monotonic() - start
    from .._tree import HOW
    how = ", ".join(f"{HOW.get(k, k)} {n:,}" for k, n in sorted(c.hows.items()))
    print(f"linuxaio copy: {c.done_files:,} files, {_human(c.done_bytes)} copied in {el:.2f} s"
          + (f" ({how})" if how else "") + (f", {c.skipped:,} up to date" if c.skipped else ""))
    if c.failures:
        print(f"linuxaio copy: {len(c.failures)} entries failed:", file=sys.stderr)
        for f in c.failures[:50]:
            print(f"  {f}", file=sys.stderr)
        if len(c.failures) > 50:
            print(f"  ... and {len(c.failures) - 50} more", file=sys.stderr)
        return 1
    return 0
