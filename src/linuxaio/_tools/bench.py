"""The bundled benchmark: random reads through the callback API vs os.pread.

Both sides read 4 KiB-aligned blocks at random offsets of a file brought
into the page cache first, so the figures measure the library, not the disk.
"""
from __future__ import annotations

import mmap
import os
import random
import select
import sys
import tempfile
import time
from dataclasses import dataclass

import linuxaio
from .pagecache import PAGE, read_through, resident_pages


@dataclass
class Result:
    name: str
    ops: int
    seconds: float
    bs: int
    latencies_ns: list[int]

    @property
    def iops(self) -> float:
        return self.ops / self.seconds

    @property
    def mbps(self) -> float:
        return self.ops * self.bs / self.seconds / 1e6

    def percentile(self, p: float) -> float:
        """Latency in microseconds at percentile p (0..100)."""
        lat = sorted(self.latencies_ns)
        if not lat:
            return float("nan")
        return lat[min(len(lat) - 1, int(len(lat) * p / 100))] / 1000


def make_file(path: str | None, size: int) -> str:
    """Create a file of size random bytes: a temporary one (path None) or path,
    which must not exist (O_EXCL: an existing file is never touched).  A file
    left unfinished (no space...) is removed."""
    if path is None:
        fd, path = tempfile.mkstemp(prefix="linuxaio-bench-", dir=os.environ.get("TMPDIR"))
    else:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        chunk = os.urandom(1 << 20)
        with os.fdopen(fd, "wb") as f:
            for _ in range(0, size, len(chunk)):
                f.write(chunk)
            f.truncate(size)
    except BaseException:
        os.unlink(path)
        raise
    return path


def warm(path: str) -> float:
    """Read the whole file so it sits in the page cache; return the resident
    fraction (nan if it cannot be told)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        read_through(fd)
        try:
            resident, total = resident_pages(fd)
        except OSError:
            return float("nan")
        return resident / total if total else 1.0
    finally:
        os.close(fd)


class Progress:
    def __init__(self, label: str, seconds: float, quiet: bool):
        # a line redrawn with \r belongs on a terminal, not in a log file
        stderr = sys.stderr
        quiet = quiet or stderr is None or not stderr.isatty()
        self.label, self.seconds, self.quiet = label, seconds, quiet
        self.start = time.perf_counter()
        self.next = self.start + 0.5

    def tick(self, ops: int) -> None:
        now = time.perf_counter()
        if self.quiet or now < self.next:
            return
        self.next = now + 0.5
        t = now - self.start
        sys.stderr.write(f"\r  {self.label}: {t:4.1f}/{self.seconds:.0f} s  {ops / t:12,.0f} IOPS ")
        sys.stderr.flush()

    def done(self) -> None:
        if not self.quiet:
            sys.stderr.write("\r" + " " * 60 + "\r")


def run_linuxaio(fd: int, size: int, bs: int, qd: int, seconds: float, write: bool,
                 quiet: bool) -> Result:
    """qd requests in flight; each callback submits the next into its own buffer."""
    nblocks = size // bs
    arena = mmap.mmap(-1, qd * max(bs, PAGE))   # page-aligned buffers
    stride = max(bs, PAGE)
    submit = linuxaio.aio_write if write else linuxaio.aio_read
    randrange = random.randrange
    clock = time.perf_counter_ns
    latencies: list[int] = []
    record = latencies.append
    ops = 0
    stop = False
    progress = Progress("linuxaio", seconds, quiet)

    def slot(i: int):
        buf = memoryview(arena)[i * stride: i * stride + bs]
        started = 0

        def done(n):
            nonlocal ops, started
            if isinstance(n, OSError):
                raise n
            ops += 1
            record(clock() - started)
            if not stop:
                started = clock()
                submit(fd, randrange(nblocks) * bs, bs, buf, 0, done)

        def first():
            nonlocal started
            started = clock()
            submit(fd, randrange(nblocks) * bs, bs, buf, 0, done)

        return first

    for i in range(qd):
        slot(i)()
    t0 = time.perf_counter()
    deadline = t0 + seconds
    pfd = linuxaio.poll_fileno()
    poll_cb = linuxaio.poll_cb
    while linuxaio.nreqs():
        select.select([pfd], [], [])
        poll_cb()
        if not stop:
            now = time.perf_counter()
            progress.tick(ops)
            if now >= deadline:
                stop = True
    elapsed = time.perf_counter() - t0
    progress.done()
    return Result("linuxaio", ops, elapsed, bs, latencies)


def run_plain(fd: int, size: int, bs: int, seconds: float, write: bool, quiet: bool,
              direct: bool = False) -> Result:
    """One os.pread (os.pwrite) at a time; under O_DIRECT os.preadv (os.pwritev)
    of one page-aligned buffer, as O_DIRECT needs."""
    nblocks = size // bs
    randrange = random.randrange
    clock = time.perf_counter_ns
    latencies: list[int] = []
    record = latencies.append
    data = os.urandom(bs)
    pread, pwrite = os.pread, os.pwrite
    if direct:   # O_DIRECT wants page-aligned memory: one mmap'd buffer, read into in place
        aligned = mmap.mmap(-1, max(bs, PAGE))
        aligned[:bs] = data
        view = [memoryview(aligned)[:bs]]

        def pread(fd, n, off):
            return os.preadv(fd, view, off)

        def pwrite(fd, _data, off):
            return os.pwritev(fd, view, off)
    ops = 0
    progress = Progress("os.pread" if not write else "os.pwrite", seconds, quiet)
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while True:
        for _ in range(256):
            started = clock()
            if write:
                pwrite(fd, data, randrange(nblocks) * bs)
            else:
                pread(fd, bs, randrange(nblocks) * bs)
            record(clock() - started)
        ops += 256
        now = time.perf_counter()
        progress.tick(ops)
        if now >= deadline:
            break
    progress.done()
    return Result("os.pread" if not write else "os.pwrite", ops, time.perf_counter() - t0, bs, latencies)
