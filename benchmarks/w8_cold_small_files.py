"""W8: cold small files: open + read whole + close of 20,000 files of 1-16 KiB, caches dropped, 64 in flight.

Before each contender the page cache, dentries and inodes are dropped
(echo 3 > /proc/sys/vm/drop_caches: root only), so every open and read
goes to the device.  One pass over the files per contender, each in its
own process, in the same run:
  plain           for p: with open(p, 'rb') as f: f.read()
  tpe-8           ThreadPoolExecutor(8).map over the same
  c-uring         benchmarks/w8_uring_loop.c: OPENAT, READ, CLOSE per file on one ring (the reference)
  ioaio           Perl IO::AIO: aio_open -> aio_read -> aio_close callbacks, 64 in flight
  linuxaio-slurp  64 asyncio tasks, each `await linuxaio.slurp(p)`
  slurp-uvloop    the same under uvloop
  linuxaio-cb     aio_slurp callbacks, each starting the next file (64 in flight)
  threads-slurp   linuxaio-slurp with LINUXAIO_ENGINE=threads
Prints a table of files/s with ratios to the C ring loop and to IO::AIO.

With --rounds N the contenders run N times in turn (the device and the
host's cache warm up alike for all) and the table shows medians; "CPU us"
is the contender's process CPU time (user + system, its threads and the
kernel's io_uring workers included) per file: for linuxaio during the pass
(the interpreter's start left out), whose line also splits it: the loop's
thread, the ring thread, the rest (kernel workers, the thread pool); for
the plain loop and ThreadPoolExecutor(8) their start is in it.

python benchmarks/w8_cold_small_files.py [--files 20000] [--depth 64] [--rounds 1] [--only a,b]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common

HERE = Path(__file__).resolve().parent
SEED = 8


def result(nfiles: int, nbytes: int, seconds: float, **extra) -> dict:
    return {"files": nfiles, "bytes": nbytes, "seconds": round(seconds, 4),
            "files_per_s": round(nfiles / seconds), **extra}


# ---- contenders in a child process (--contender) ----

def ring_thread_ns() -> int:
    """CPU time of linuxaio's ring thread so far (its schedstat), 0 if none."""
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                if f.read().strip() != "linuxaio-ring":
                    continue
            with open(f"/proc/self/task/{tid}/schedstat") as f:
                return int(f.read().split()[0])
        except OSError:
            pass
    return 0


class CpuSplit:
    """Where a linuxaio contender's CPU goes, per file, without the
    interpreter's start: the loop's thread, the ring thread, and the rest
    (the kernel's io_uring workers, the thread pool)."""

    def __enter__(self):
        self.t0 = (resource.getrusage(resource.RUSAGE_SELF), time.thread_time_ns(), ring_thread_ns())
        return self

    def __exit__(self, *exc):
        self.t1 = (resource.getrusage(resource.RUSAGE_SELF), time.thread_time_ns(), ring_thread_ns())

    def per_file(self, nfiles: int) -> dict:
        (u0, loop0, ring0), (u1, loop1, ring1) = self.t0, self.t1
        total = (u1.ru_utime + u1.ru_stime - u0.ru_utime - u0.ru_stime) * 1e6 / nfiles
        loop, ring = (loop1 - loop0) / 1e3 / nfiles, (ring1 - ring0) / 1e3 / nfiles
        return {"us_per_file": {"process": round(total, 1), "loop_thread": round(loop, 1),
                                "ring_thread": round(ring, 1), "rest": round(total - loop - ring, 1)}}


def c_plain(paths, depth):
    t0 = time.perf_counter()
    n = 0
    for p in paths:
        with open(p, "rb") as f:
            n += len(f.read())
    return result(len(paths), n, time.perf_counter() - t0)


def c_tpe(paths, depth):
    from concurrent.futures import ThreadPoolExecutor

    def one(p):
        with open(p, "rb") as f:
            return len(f.read())
    t0 = time.perf_counter()
    with ThreadPoolExecutor(8) as ex:
        n = sum(ex.map(one, paths, chunksize=16))
    return result(len(paths), n, time.perf_counter() - t0)


def c_slurp(paths, depth, run=asyncio.run):
    import linuxaio
    nxt = nbytes = 0

    async def work():
        nonlocal nxt, nbytes
        while nxt < len(paths):
            p = paths[nxt]
            nxt += 1
            data = await linuxaio.slurp(p)   # not `nbytes += len(await ...)`: that reads nbytes first
            nbytes += len(data)

    async def main():
        t0 = time.perf_counter()
        await asyncio.gather(*(work() for _ in range(depth)))
        return time.perf_counter() - t0
    with CpuSplit() as cpu:
        secs = run(main())
    return result(len(paths), nbytes, secs, engine=linuxaio.engine(), **cpu.per_file(len(paths)))


def c_slurp_uvloop(paths, depth):
    import uvloop
    return c_slurp(paths, depth, uvloop.run)


def c_cb(paths, depth):
    import linuxaio
    state = {"next": 0, "bytes": 0}

    def cb(data):
        state["bytes"] += len(data)
        i = state["next"]
        if i < len(paths):
            state["next"] = i + 1
            linuxaio.aio_slurp(paths[i], 0, None, cb)
    with CpuSplit() as cpu:
        t0 = time.perf_counter()
        for _ in range(min(depth, len(paths))):
            i = state["next"]
            state["next"] = i + 1
            linuxaio.aio_slurp(paths[i], 0, None, cb)
        linuxaio.flush()
        secs = time.perf_counter() - t0
    return result(len(paths), state["bytes"], secs, engine=linuxaio.engine(), **cpu.per_file(len(paths)))


CHILD = {"plain": c_plain, "tpe-8": c_tpe, "linuxaio-slurp": c_slurp, "slurp-uvloop": c_slurp_uvloop,
         "linuxaio-cb": c_cb,
         "threads-slurp": c_slurp}


def run_child(name, args, total, env=None):
    e = dict(os.environ, **(env or {}))
    out = subprocess.run([sys.executable, __file__, "--contender", name, "--files", str(args.files),
                          "--depth", str(args.depth)], capture_output=True, text=True, env=e)
    if out.returncode:
        return {"skipped": f"failed: {out.stderr.strip()[-300:]}"}
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["bytes"] == total, (name, r["bytes"], total)
    return r


def build_c_loop(paths) -> tuple[Path, Path] | None:
    """The C loop compiled and the path list written, once per run (outside
    the contender's measured CPU time)."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        return None
    tmp = Path(tempfile.mkdtemp(prefix="w8-"))
    exe = tmp / "w8_uring_loop"
    subprocess.run([cc, "-O2", "-o", str(exe), str(HERE / "w8_uring_loop.c")], check=True)
    lst = tmp / "list"
    lst.write_text("\n".join(paths) + "\n")
    return exe, lst


def run_c_loop(args, built, total):
    if not built:
        return {"skipped": "no C compiler"}
    exe, lst = built
    out = subprocess.run([str(exe), str(lst), str(args.depth)], capture_output=True, text=True)
    if out.returncode:
        return {"skipped": f"failed: {out.stderr.strip()[-200:]}"}
    r = json.loads(out.stdout)
    assert r["bytes"] == total, (r, total)
    return r


def run_ioaio(args, root, total):
    out = subprocess.run(["perl", str(HERE / "perl" / "w8_ioaio.pl"), "--tree", str(root),
                          "--depth", str(args.depth)], capture_output=True, text=True)
    try:
        r = json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"skipped": f"IO::AIO failed: {out.stderr.strip()[-200:]}"}
    if "bytes" in r:
        assert r["bytes"] == total, (r, total)
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=20000)
    ap.add_argument("--depth", type=int, default=64)
    ap.add_argument("--only", default="")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--contender")
    args = ap.parse_args()
    root = common.small_tree(args.files, SEED)
    paths, sizes = common.read_manifest(root)
    total = sum(sizes)
    if args.contender:
        print(json.dumps(CHILD[args.contender](paths, args.depth)))
        return
    if not common.drop_caches():
        print("W8 needs root to drop the caches (echo 3 > /proc/sys/vm/drop_caches)")
        return
    rows = {
        "plain": lambda: run_child("plain", args, total),
        "tpe-8": lambda: run_child("tpe-8", args, total),
        "c-uring": lambda: run_c_loop(args, built, total),
        "ioaio": lambda: run_ioaio(args, root, total),
        "linuxaio-slurp": lambda: run_child("linuxaio-slurp", args, total),
        "slurp-uvloop": lambda: run_child("slurp-uvloop", args, total),
        "linuxaio-cb": lambda: run_child("linuxaio-cb", args, total),
        "threads-slurp": lambda: run_child("threads-slurp", args, total, {"LINUXAIO_ENGINE": "threads"}),
    }
    only = [s for s in args.only.split(",") if s]
    built = build_c_loop(paths) if not only or "c-uring" in only else None
    runs: dict[str, list[dict]] = {}
    for rnd in range(args.rounds):
        for name, fn in rows.items():
            if only and name not in only:
                continue
            common.drop_caches()
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            r = fn()
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            if "us_per_file" in r:   # measured around the pass, in the child
                r["cpu_us_per_file"] = r["us_per_file"]["process"]
            elif "files_per_s" in r:
                cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
                r["cpu_us_per_file"] = round(cpu * 1e6 / r["files"], 1)
            runs.setdefault(name, []).append(r)
            print(rnd, name, json.dumps(r), flush=True)
    results = {}
    for name, rs in runs.items():
        ok = [r for r in rs if "files_per_s" in r]
        if not ok:
            results[name] = rs[-1]
            continue
        results[name] = {"files_per_s": round(statistics.median(r["files_per_s"] for r in ok)),
                         "cpu_us_per_file": round(statistics.median(r["cpu_us_per_file"] for r in ok), 1)}
    if built:
        shutil.rmtree(built[0].parent, ignore_errors=True)
    ref = results.get("c-uring", {}).get("files_per_s")
    aio = results.get("ioaio", {}).get("files_per_s")
    print(f"\nW8 cold small files: {args.files} files of 1-16 KiB, caches dropped, {args.depth} in flight, "
          f"median of {args.rounds} ({os.uname().release})")
    print(f"{'contender':16} {'files/s':>9} {'x C ring':>9} {'x IO::AIO':>10} {'x plain':>8} {'CPU us':>7}")
    plain = results.get("plain", {}).get("files_per_s")
    for name, r in results.items():
        if "files_per_s" not in r:
            print(f"{name:16} skipped: {r.get('skipped')}")
            continue
        f = r["files_per_s"]
        fmt = lambda base: f"{f / base:.2f}x" if base else "-"  # noqa: E731
        print(f"{name:16} {f:>9} {fmt(ref):>9} {fmt(aio):>10} {fmt(plain):>8} {r['cpu_us_per_file']:>7}")


if __name__ == "__main__":
    main()
