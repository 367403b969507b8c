"""W8t: cold small files on the thread engine: the pool's growth for blocking requests.

20,000 files of 1-16 KiB (common.small_tree), the page cache dropped before
each contender (`sync; echo 3 > /proc/sys/vm/drop_caches`: needs root), then
each file read whole once (open + read + close) with 64 in flight:

  plain            os.open / os.read / os.close, one file at a time
  threadpool-8     ThreadPoolExecutor(8) running that per file, 64 submitted
  linuxaio-4       `await linuxaio.slurp(p)`, 64 tasks, max_blocking_parallel(0):
                   the pool stays at its 4 threads (before the growth)
  linuxaio-grow    the same with the default max_blocking_parallel (32): the
                   pool grows while the requests block on the device
  linuxaio-cb-4    the callback API's aio_slurp, 64 in flight, no growth
  linuxaio-cb-grow the same, growth on

W8 (the ring helper's) measures the same files with the io_uring engine;
this one is the thread engine's figure (LINUXAIO_ENGINE=threads is set for
the linuxaio contenders, harmless where there is no such variable).

    python benchmarks/w8t_cold_small_files_threads.py              # all, a table
    python benchmarks/w8t_cold_small_files_threads.py --contender linuxaio-grow
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import common

DEPTH = 64
NFILES = 20_000
SEED = 8
CONTENDERS = ["plain", "threadpool-8", "linuxaio-4", "linuxaio-grow", "linuxaio-cb-4",
              "linuxaio-cb-grow"]


def run_plain(paths):
    n = 0
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        n += len(os.read(fd, common.SMALL_MAX))
        os.close(fd)
    return n


def run_threadpool(paths, workers):
    from concurrent.futures import ThreadPoolExecutor

    def one(p):
        fd = os.open(p, os.O_RDONLY)
        try:
            return len(os.read(fd, common.SMALL_MAX))
        finally:
            os.close(fd)
    with ThreadPoolExecutor(workers) as ex:
        return sum(ex.map(one, paths, chunksize=1))


def run_linuxaio(paths, grow: bool, peak: list):
    import asyncio
    aio = common.import_linuxaio()
    if not grow:
        aio.max_blocking_parallel(0)

    async def main():
        it = iter(paths)
        total = 0

        async def worker():
            nonlocal total
            for p in it:
                n = len(await aio.slurp(p))
                total += n
                peak[0] = max(peak[0], aio.nthreads())
        await asyncio.gather(*(worker() for _ in range(DEPTH)))
        return total
    return asyncio.run(main())


def run_linuxaio_cb(paths, grow: bool, peak: list):
    aio = common.import_linuxaio()
    if not grow:
        aio.max_blocking_parallel(0)
    it = iter(paths)
    total = 0

    def start():
        p = next(it, None)
        if p is not None:
            aio.aio_slurp(p, 0, None, done)

    def done(data):
        nonlocal total
        if isinstance(data, OSError):
            raise data
        total += len(data)
        peak[0] = max(peak[0], aio.nthreads())
        start()
    for _ in range(DEPTH):
        start()
    aio.flush()
    return total


def contender(name: str, paths, sizes) -> dict:
    dropped = common.drop_caches()
    peak = [0]
    t0 = time.perf_counter()
    if name == "plain":
        nbytes = run_plain(paths)
    elif name == "threadpool-8":
        nbytes = run_threadpool(paths, 8)
    elif name == "linuxaio-4":
        nbytes = run_linuxaio(paths, False, peak)
    elif name == "linuxaio-grow":
        nbytes = run_linuxaio(paths, True, peak)
    elif name == "linuxaio-cb-4":
        nbytes = run_linuxaio_cb(paths, False, peak)
    elif name == "linuxaio-cb-grow":
        nbytes = run_linuxaio_cb(paths, True, peak)
    else:
        raise SystemExit(f"unknown contender {name!r}; have {', '.join(CONTENDERS)}")
    dt = time.perf_counter() - t0
    assert nbytes == sum(sizes), (nbytes, sum(sizes))
    out = common.result(len(paths), dt, nbytes, files_per_s=round(len(paths) / dt),
                        cold=dropped)
    if name.startswith("linuxaio"):
        out["peak_threads"] = peak[0]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--contender")
    ap.add_argument("--files", type=int, default=NFILES)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    root = common.small_tree(args.files, SEED)
    paths, sizes = common.read_manifest(root)
    if args.contender:
        print(json.dumps(contender(args.contender, paths, sizes)))
        return
    env = dict(os.environ, LINUXAIO_ENGINE="threads")
    rows = {}
    for r in range(args.rounds):
        for name in CONTENDERS:
            proc = subprocess.run([sys.executable, __file__, "--contender", name,
                                   "--files", str(args.files)],
                                  capture_output=True, text=True, env=env)
            if proc.returncode:
                print(name, "failed:", proc.stderr[-2000:], file=sys.stderr)
                continue
            rows.setdefault(name, []).append(common.last_json(proc.stdout))
    base = None
    print(f"W8t: {args.files} cold files of 1-16 KiB, {DEPTH} in flight, thread engine")
    print(f"{'contender':18} {'files/s':>9} {'x plain':>8} {'peak threads':>13}")
    for name, runs in rows.items():
        runs.sort(key=lambda d: d["files_per_s"])
        med = runs[len(runs) // 2]
        base = base or (med["files_per_s"] if name == "plain" else None)
        ratio = f"{med['files_per_s'] / base:.2f}x" if base else "-"
        print(f"{name:18} {med['files_per_s']:>9} {ratio:>8} {med.get('peak_threads', ''):>13}"
              + ("" if med["cold"] else "   (caches NOT dropped)"))


if __name__ == "__main__":
    main()
