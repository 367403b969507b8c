"""Shared pieces of the linuxaio benchmark harness.

- test data: one large file (W1, W3) and a tree of small files (W2s, W2r),
  created once under a directory on the same filesystem as /tmp and reused;
- cache warming, dropping the caches (cold runs) and a page-cache
  residency check (mincore(2));
- fio and Perl (IO::AIO) peers run as child processes;
- the contender registry and the child protocol: a workload script runs ONE
  contender per process and prints ONE JSON line
  {"ops", "seconds", "iops", "mbps", ...} or {"skipped": reason}.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import mmap
import os
import random
import shutil
import subprocess
import sys
import tempfile
import traceback
from array import array
from pathlib import Path
from time import perf_counter

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PERL_DIR = HERE / "perl"
DATA_DIR = Path(os.environ.get("LINUXAIO_BENCH_DIR")
                or os.path.join(tempfile.gettempdir(), "linuxaio-bench"))

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
PAGE = mmap.PAGESIZE
N_OFFSETS = 1 << 20          # precomputed random offsets for W1, cycled
SMALL_MIN, SMALL_MAX = 1 * KiB, 16 * KiB


def _tool(name: str):
    """linuxaio/_tools/<name>.py of this checkout, loaded by its path: an A/B
    run's other build (PYTHONPATH) may be older and have no _tools."""
    path = REPO / "src" / "linuxaio" / "_tools" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"linuxaio_tools_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_sizes, _pagecache = _tool("sizes"), _tool("pagecache")
parse_size = _sizes.parse_size       # '1G', '256M', '64k', '4096' -> bytes


# --------------------------------------------------------------------- data

def big_file(size: int, data_dir: Path = DATA_DIR) -> Path:
    """A file of `size` bytes (a multiple of 1 MiB), created once and reused."""
    if size <= 0 or size % MiB:
        raise ValueError(f"size must be a positive multiple of 1 MiB, got {size}")
    path = Path(data_dir) / f"big-{size}.dat"
    if path.exists() and path.stat().st_size == size:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    chunk = random.Random(1).randbytes(MiB)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        for _ in range(size // MiB):
            f.write(chunk)
    os.replace(tmp, path)
    return path


def small_tree(nfiles: int, seed: int, data_dir: Path = DATA_DIR) -> Path:
    """`nfiles` files of SMALL_MIN..SMALL_MAX random bytes (fixed seed), 200 per
    directory, listed in manifest.tsv ("size<TAB>relative path" per line)."""
    root = Path(data_dir) / f"tree-{nfiles}-{seed}"
    if (root / "manifest.tsv").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    rng = random.Random(seed)
    lines = []
    for i in range(nfiles):
        rel = f"d{i // 200:04d}/f{i:06d}"
        size = rng.randint(SMALL_MIN, SMALL_MAX)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(rng.randbytes(size))
        lines.append(f"{size}\t{rel}\n")
    tmp = root / "manifest.tsv.tmp"
    tmp.write_text("".join(lines))
    os.replace(tmp, root / "manifest.tsv")   # written last: marks the tree complete
    return root


def read_manifest(root: Path) -> tuple[list[str], list[int]]:
    """Absolute paths (str) and sizes of the files of a small_tree."""
    paths, sizes = [], []
    for line in (Path(root) / "manifest.tsv").read_text().splitlines():
        size, rel = line.split("\t")
        paths.append(os.path.join(root, rel))
        sizes.append(int(size))
    return paths, sizes


def random_offsets(file_size: int, block: int, seed: int = 42) -> array:
    """N_OFFSETS block-aligned random offsets; index them with i & (N_OFFSETS-1)."""
    rng = random.Random(seed)
    nblocks = file_size // block
    return array("q", [rng.randrange(nblocks) * block for _ in range(N_OFFSETS)])


# ------------------------------------------------------ cache warm + check

def warm(paths) -> None:
    """Read every file fully so that it is in the page cache."""
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            _pagecache.read_through(fd)
        finally:
            os.close(fd)


def resident_pages(path) -> tuple[int, int]:
    """(resident pages, total pages) of a file's page cache, via mincore(2)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return _pagecache.resident_pages(fd)
    except OSError as exc:
        raise OSError(exc.errno, f"{exc.strerror} {path}") from None
    finally:
        os.close(fd)


def resident_pct(paths) -> float:
    res = tot = 0
    for p in paths:
        r, t = resident_pages(p)
        res, tot = res + r, tot + t
    return round(100.0 * res / tot, 2) if tot else 100.0


def drop_caches() -> bool:
    """Write dirty pages back, then drop the page cache, dentries and inodes
    (`sync; echo 3 > /proc/sys/vm/drop_caches`), so that what is read next
    comes from the device.  False where that is not allowed (not root)."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


# ------------------------------------------------------- contender registry

class Skip(Exception):
    """Raised by a contender that cannot run here (e.g. a peer not installed)."""


class Contenders(dict):
    """name -> function(args) -> result dict.  Register with @CONTENDERS.add("name")."""

    def add(self, name):
        def deco(fn):
            self[name] = fn
            return fn
        return deco


def import_linuxaio():
    """Import linuxaio, falling back to an in-place build under src/; Skip if absent."""
    try:
        import linuxaio
    except ImportError as exc:
        src = REPO / "src"
        if not list((src / "linuxaio").glob("_engine*.so")):
            raise Skip(f"not installed: linuxaio ({exc})") from None
        sys.path.insert(0, str(src))
        try:
            import linuxaio
        except ImportError as exc2:
            raise Skip(f"not installed: linuxaio ({exc2})") from None
    for name in ("poll_fileno", "poll_cb", "nreqs", "aio_read"):
        if not hasattr(linuxaio, name):
            raise Skip(f"linuxaio has no {name}() yet")
    # LINUXAIO_INLINE=0: every await through the engine (issue 12's "off" figures)
    if os.environ.get("LINUXAIO_INLINE") == "0" and hasattr(linuxaio, "inline"):
        linuxaio.inline(False)
    return linuxaio


def import_linuxaio_async():
    """linuxaio with its awaitable API (linuxaio.os, slurp, aligned_buffer); Skip if absent."""
    aio = import_linuxaio()
    missing = [n for n in ("os", "slurp", "aligned_buffer") if not hasattr(aio, n)]
    missing += [f"os.{n}" for n in ("pread", "preadinto", "stat", "pread_many", "stat_many")
                if hasattr(aio, "os") and not hasattr(aio.os, n)]
    if missing:
        raise Skip(f"linuxaio has no {', '.join(missing)} yet")
    return aio


def need(module: str):
    """Import a peer module by name, or Skip("not installed: ...")."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise Skip(f"not installed: {module} ({exc})") from None


def result(ops: int, seconds: float, nbytes: int | None, **extra) -> dict:
    out = {"ops": ops, "seconds": round(seconds, 6),
           "iops": round(ops / seconds, 1) if seconds else None,
           "mbps": round(nbytes / seconds / 1e6, 2) if nbytes and seconds else None}
    out.update(extra)
    return out


def measure(run, args, **extra) -> dict:
    """run(budget_seconds) -> (ops, nbytes).  One untimed warm-up call, one timed."""
    if args.warmup > 0:
        run(args.warmup)
    t0 = perf_counter()
    ops, nbytes = run(args.seconds)
    dt = perf_counter() - t0
    return result(ops, dt, nbytes, threads=len(os.listdir("/proc/self/task")), **extra)


# ------------------------------------------------ async (awaitable) contenders
#
# An async contender's run(budget) is a coroutine function -> (ops, nbytes) or
# (ops, nbytes, extra_dict).  measure_async() runs the optional setup, the
# warm-up call and the timed call inside ONE event loop run, so that the
# loop, its reader registrations and any thread pool persist between them.

LOOPS = ("asyncio", "uvloop", "trio")


def run_loop(main, loop: str = "asyncio"):
    """Run the coroutine function main() under asyncio's default loop, uvloop or trio."""
    if loop == "asyncio":
        import asyncio
        return asyncio.run(main())
    if loop == "uvloop":
        uvloop = need("uvloop")
        return uvloop.run(main())
    if loop == "trio":
        trio = need("trio")
        return trio.run(main)
    raise ValueError(f"unknown loop {loop!r}; have {', '.join(LOOPS)}")


def in_asyncio() -> bool:
    """True inside an asyncio (or uvloop) loop, False inside trio.run."""
    import asyncio
    return asyncio._get_running_loop() is not None


async def run_tasks(fns) -> None:
    """Run the coroutine functions fns (no arguments) concurrently and wait for
    all of them, under asyncio/uvloop (gather) or trio (a nursery)."""
    if in_asyncio():
        import asyncio
        await asyncio.gather(*(fn() for fn in fns))
    else:
        import trio
        async with trio.open_nursery() as nursery:
            for fn in fns:
                nursery.start_soon(fn)


def sleeper():
    """The running library's sleep(seconds) coroutine function."""
    if in_asyncio():
        import asyncio
        return asyncio.sleep
    import trio
    return trio.sleep


async def timed(run, args, **extra) -> dict:
    """The async twin of measure(), awaited inside a running loop: the warm-up
    run(warmup), then the timed run(seconds); returns the result dict."""
    if args.warmup > 0:
        await run(args.warmup)
    t0 = perf_counter()
    ops, nbytes, *more = await run(args.seconds)
    dt = perf_counter() - t0
    if more and more[0]:
        extra.update(more[0])
    # counted inside the loop, while its thread pools are still alive
    return result(ops, dt, nbytes, threads=len(os.listdir("/proc/self/task")), **extra)


def measure_async(run, args, loop: str = "asyncio", setup=None, **extra) -> dict:
    """Under `loop`: await setup() (untimed: a correctness check, opening files;
    it may return a dict that is merged into the result), then timed(run)."""
    async def main():
        info = dict(extra, loop=loop)
        if setup is not None:
            info.update(await setup() or {})
        return await timed(run, args, **info)
    return run_loop(main, loop)


async def async_passes(one_pass, budget: float) -> int:
    """Await one_pass() until `budget` seconds have passed (at least once)."""
    deadline = perf_counter() + budget
    passes = 0
    while True:
        await one_pass()
        passes += 1
        if perf_counter() >= deadline:
            return passes


def repeat_passes(one_pass, budget: float) -> int:
    """Call one_pass() until `budget` seconds have passed (at least once)."""
    deadline = perf_counter() + budget
    passes = 0
    while True:
        one_pass()
        passes += 1
        if perf_counter() >= deadline:
            return passes


def last_json(text: str) -> dict:
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError(f"no JSON line in output: {text[-500:]!r}")


def run_perl(script: str, *args) -> dict:
    """Run benchmarks/perl/<script> with args; it prints the same JSON line."""
    perl = shutil.which("perl")
    if not perl:
        raise Skip("not installed: perl")
    proc = subprocess.run([perl, str(PERL_DIR / script), *map(str, args)],
                          stdout=subprocess.PIPE, text=True)
    if proc.returncode:
        raise RuntimeError(f"{script} exited with {proc.returncode}")
    out = last_json(proc.stdout)
    if "skipped" in out:
        raise Skip(out["skipped"])
    return out


def run_fio(*options: str) -> dict:
    """Run fio with these options (--name, --filename, --rw, --bs...) and
    return its JSON figures for the first job's reads (total_ios, io_bytes,
    iops, bw_bytes, runtime in ms).  Skip where fio is missing or fails."""
    exe = shutil.which("fio")
    if not exe:
        raise Skip("not installed: fio (benchmarks/setup_peers.sh)")
    proc = subprocess.run([exe, *options, "--output-format=json"], capture_output=True, text=True)
    if proc.returncode:
        raise Skip(f"fio failed: {proc.stderr.strip()[-300:]}")
    out = proc.stdout   # fio may print notes before its JSON
    return json.loads(out[out.index("{"):])["jobs"][0]["read"]


# ------------------------------------------------------ workload entry point

def parser(description: str, depth: int) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--contender", help="run this contender and print one JSON line")
    p.add_argument("--list", action="store_true", help="print the contender names")
    p.add_argument("--seconds", type=float, default=5.0, help="timed run length")
    p.add_argument("--warmup", type=float, default=1.0, help="untimed warm-up length")
    p.add_argument("--depth", type=int, default=depth, help="requests in flight")
    p.add_argument("--dir", type=Path, default=DATA_DIR, help="test data directory")
    return p


def main(contenders: Contenders, args, data) -> None:
    """Prepare the data (data() -> list of paths), warm it, check it is resident,
    run args.contender and print one JSON line."""
    if args.list or not args.contender:
        print(json.dumps(list(contenders)))
        return
    fn = contenders.get(args.contender)
    if fn is None:
        sys.exit(f"unknown contender {args.contender!r}; have {', '.join(contenders)}")
    data_paths = data()
    warm(data_paths)
    before = resident_pct(data_paths)
    if before < 99.0:
        print(f"warning: only {before}% of the data is resident after warming",
              file=sys.stderr)
    try:
        out = fn(args)
    except Skip as exc:
        out = {"skipped": str(exc)}
    except Exception as exc:   # report, don't crash the runner's parsing
        traceback.print_exc()
        out = {"error": f"{type(exc).__name__}: {exc}"}
    out.setdefault("resident_pct", before)
    if "skipped" not in out:
        out["resident_pct_after"] = resident_pct(data_paths)
    print(json.dumps(out), flush=True)
