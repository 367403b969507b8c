"""W5: 4 KiB random reads with O_DIRECT from a large file, 64 in flight: the device's speed.

Contenders, each in its own process, on the same file in the same run:
  fio-io_uring   fio --ioengine=io_uring --iodepth=64 --direct=1 (the reference)
  fio-psync-8    fio --ioengine=psync --numjobs=8 --direct=1
  ioaio          Perl IO::AIO, aio_read callbacks, 64 in flight (its 8 threads... as configured)
  linuxaio-cb    aio_read callbacks, each starting the next read (64 in flight)
  linuxaio-await 64 asyncio tasks, each `await linuxaio.os.preadinto(fd, buf, off)`
  threads-cb     linuxaio-cb with LINUXAIO_ENGINE=threads (4 threads, the default)
  threads-cb-64  the same with min_parallel(64)
Prints one JSON line per contender and a table with each IOPS figure as a
ratio of fio's io_uring figure.  The page cache plays no part (O_DIRECT).

python benchmarks/w5_direct_random.py [--file PATH] [--size 4G] [--seconds 5] [--depth 64]
python benchmarks/w5_direct_random.py --contender linuxaio-cb --file PATH   (one, JSON)
python benchmarks/w5_direct_random.py --rounds 5 --seconds 3   (paired rounds, below)

The virtual disk's speed moves over minutes (a throttled device gave fio 6k
IOPS, then linuxaio 43k a minute later), more than the contenders differ.
--rounds N runs fio's io_uring engine and linuxaio's callbacks and awaits N
times, back to back, the order alternating each round, and takes the median
of each round's ratio to its own fio figure; fio's spread across the rounds
shows the throttling.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import common

HERE = Path(__file__).resolve().parent
BLOCK = 4096
NOFFSETS = 1 << 16


def parse_size(s: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    return int(s[:-1]) * units[s[-1].lower()] if s[-1].lower() in units else int(s)


def make_file(path: Path, size: int) -> None:
    if path.exists() and path.stat().st_size == size:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    chunk = random.Random(5).randbytes(1 << 20)
    with open(path, "wb") as f:
        for _ in range(size >> 20):
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())


def offsets(size: int) -> list[int]:
    rng = random.Random(42)
    return [rng.randrange(size // BLOCK) * BLOCK for _ in range(NOFFSETS)]


def result(ops: int, seconds: float, **extra) -> dict:
    return {"ops": ops, "seconds": round(seconds, 3), "iops": round(ops / seconds), **extra}


# ---- contenders run in this process (--contender) ----

def ring_stats(linuxaio) -> dict:
    """The ring thread's counters (engine_info), per request reaped: how
    well submissions and completions were batched."""
    st = linuxaio.engine_info().get("ring_stats") or {}
    n = st.get("reaped") or 0
    if not n:
        return {}
    return {"reaped": n, "enters_per_req": round(st["enters"] / n, 3),
            "reqs_per_submit_enter": round(st["started"] / max(st["submit_enters"], 1), 1),
            "reqs_per_sink_batch": round(n / max(st["sink_batches"], 1), 1),
            "wakes_per_req": round(st.get("wakes", 0) / n, 3),
            "kernel_us_per_req": round(st.get("kernel_us", 0) / n, 1),
            "loop_ring_share": round(st.get("loop_started", 0) / max(st["started"], 1), 3)}


def linuxaio_cb(args) -> dict:
    import linuxaio
    if args.min_parallel:
        linuxaio.min_parallel(args.min_parallel)
    fd = os.open(args.file, os.O_RDONLY | os.O_DIRECT)
    offs = offsets(args.size)
    buf = linuxaio.aligned_buffer(args.depth * BLOCK)
    state = {"i": 0, "done": 0, "stop": False}

    def make_cb(slot):
        def cb(res):
            if res != BLOCK:
                raise RuntimeError(f"read returned {res}")
            state["done"] += 1
            if not state["stop"]:
                i = state["i"] = state["i"] + 1
                linuxaio.aio_read(fd, offs[i % NOFFSETS], BLOCK, buf, slot * BLOCK, cb)
        return cb
    for slot in range(args.depth):
        state["i"] += 1
        linuxaio.aio_read(fd, offs[state["i"]], BLOCK, buf, slot * BLOCK, make_cb(slot))
    t0 = time.perf_counter()
    end = t0 + args.seconds
    pfd = linuxaio.poll_fileno()
    import select
    p = select.poll()
    p.register(pfd, select.POLLIN)
    while time.perf_counter() < end:
        p.poll(100)
        linuxaio.poll_cb()
    state["stop"] = True
    t1 = time.perf_counter()
    n = state["done"]
    linuxaio.flush()
    return result(n, t1 - t0, engine=linuxaio.engine(), ring_stats=ring_stats(linuxaio),
                  note="aio_read callbacks, each starting the next")


def linuxaio_await(args) -> dict:
    import linuxaio
    fd = os.open(args.file, os.O_RDONLY | os.O_DIRECT)
    offs = offsets(args.size)
    done = 0
    stop = False

    async def task(slot, buf):
        nonlocal done
        i = slot
        while not stop:
            n = await linuxaio.os.preadinto(fd, buf, offs[i % NOFFSETS])
            if n != BLOCK:
                raise RuntimeError(n)
            done += 1
            i += args.depth

    async def main():
        nonlocal stop
        bufs = [linuxaio.aligned_buffer(BLOCK) for _ in range(args.depth)]
        tasks = [asyncio.ensure_future(task(s, bufs[s])) for s in range(args.depth)]
        t0 = time.perf_counter()
        await asyncio.sleep(args.seconds)
        stop = True
        t1 = time.perf_counter()
        n = done
        await asyncio.gather(*tasks)
        return result(n, t1 - t0, engine=linuxaio.engine(), ring_stats=ring_stats(linuxaio),
                      note="await linuxaio.os.preadinto, 64 tasks")
    return asyncio.run(main())


CONTENDERS = {"linuxaio-cb": linuxaio_cb, "linuxaio-await": linuxaio_await}


# ---- the driver ----

def run_fio(args, engine: str, depth: int, jobs: int) -> dict:
    opts = ["--name=w5", f"--filename={args.file}", "--rw=randread", "--bs=4k", "--direct=1",
            f"--ioengine={engine}", f"--iodepth={depth}", f"--numjobs={jobs}", "--group_reporting",
            f"--runtime={args.seconds}", "--time_based", "--ramp_time=1", "--norandommap"]
    try:
        read = common.run_fio(*opts)
    except common.Skip as exc:
        return {"skipped": str(exc)}
    return result(read["total_ios"], read["runtime"] / 1000, note=" ".join(opts[1:8]))


def run_child(args, name: str, env: dict | None = None, extra=()) -> dict:
    e = dict(os.environ, **(env or {}))
    cmd = [sys.executable, __file__, "--contender", name, "--file", str(args.file), "--size", str(args.size),
           "--seconds", str(args.seconds), "--depth", str(args.depth), *extra]
    out = subprocess.run(cmd, capture_output=True, text=True, env=e)
    if out.returncode:
        return {"skipped": f"failed: {out.stderr.strip()[-300:]}"}
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_ioaio(args) -> dict:
    script = HERE / "perl" / "w5_ioaio.pl"
    out = subprocess.run(["perl", str(script), "--file", str(args.file), "--size", str(args.size),
                          "--seconds", str(args.seconds), "--depth", str(args.depth)],
                         capture_output=True, text=True)
    try:
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"skipped": f"IO::AIO failed: {out.stderr.strip()[-200:]}"}


def paired_rounds(args) -> None:
    """fio io_uring, linuxaio callbacks and awaits, back to back in each
    round (fio first in even rounds, last in odd ones): each linuxaio
    figure as a ratio of its own round's fio figure, and their medians."""
    import statistics
    secs = int(args.seconds)
    fio_args = argparse.Namespace(**{**vars(args), "seconds": secs})
    ratios = {"linuxaio-cb": [], "linuxaio-await": []}
    fios = []
    for k in range(args.rounds):
        order = ["fio-io_uring", "linuxaio-cb", "linuxaio-await"]
        if k % 2:
            order.reverse()
        got = {}
        for name in order:
            got[name] = run_fio(fio_args, "io_uring", args.depth, 1) if name.startswith("fio") else run_child(args, name)
        ref = got["fio-io_uring"].get("iops")
        fios.append(ref)
        line = [f"round {k + 1}: fio {ref}"]
        for name in ratios:
            r = got[name]
            if ref and "iops" in r:
                ratios[name].append(r["iops"] / ref)
                line.append(f"{name} {r['iops']} ({r['iops'] / ref:.2f}x) {r.get('ring_stats', '')}")
            else:
                line.append(f"{name} {r}")
        print("; ".join(line), flush=True)
    print(f"\nW5 paired rounds ({os.uname().release}): fio io_uring IOPS {min(fios)}-{max(fios)} "
          f"(median {statistics.median(fios):.0f})")
    for name, xs in ratios.items():
        if xs:
            print(f"{name:16} median {statistics.median(xs):.2f}x fio  (rounds: "
                  f"{', '.join(f'{x:.2f}' for x in xs)})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", type=Path, default=Path(os.environ.get("LINUXAIO_BENCH_DIR", "/work/w5-bench")) / "w5.dat")
    ap.add_argument("--size", type=parse_size, default=4 << 30)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--depth", type=int, default=64)
    ap.add_argument("--min-parallel", type=int, default=0)
    ap.add_argument("--contender")
    ap.add_argument("--rounds", type=int, default=0, help="paired rounds of fio io_uring, callbacks, awaits")
    args = ap.parse_args()
    if args.contender:
        print(json.dumps(CONTENDERS[args.contender](args)))
        return
    make_file(args.file, args.size)
    if args.rounds:
        paired_rounds(args)
        return
    secs = int(args.seconds)
    rows = {
        "fio-io_uring": lambda: run_fio(argparse.Namespace(**{**vars(args), "seconds": secs}), "io_uring", args.depth, 1),
        "fio-psync-8": lambda: run_fio(argparse.Namespace(**{**vars(args), "seconds": secs}), "psync", 1, 8),
        "ioaio": lambda: run_ioaio(args),
        "linuxaio-cb": lambda: run_child(args, "linuxaio-cb"),
        "linuxaio-await": lambda: run_child(args, "linuxaio-await"),
        "threads-cb": lambda: run_child(args, "linuxaio-cb", {"LINUXAIO_ENGINE": "threads"}),
        "threads-cb-64": lambda: run_child(args, "linuxaio-cb", {"LINUXAIO_ENGINE": "threads"},
                                           ("--min-parallel", "64")),
    }
    results = {}
    for name, fn in rows.items():
        results[name] = fn()
        print(name, json.dumps(results[name]), flush=True)
    ref = results["fio-io_uring"].get("iops")
    print(f"\nW5 4 KiB random O_DIRECT reads, {args.depth} in flight, {args.size >> 30} GiB file "
          f"({os.uname().release})")
    print(f"{'contender':16} {'IOPS':>10} {'x fio io_uring':>15}")
    for name, r in results.items():
        if "iops" in r:
            ratio = f"{r['iops'] / ref:.2f}x" if ref else "-"
            print(f"{name:16} {r['iops']:>10} {ratio:>15}")
        else:
            print(f"{name:16} {'skipped':>10}  {r['skipped']}")


if __name__ == "__main__":
    main()
