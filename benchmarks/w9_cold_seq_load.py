"""W9: cold sequential load of a big file into memory.

The page cache is dropped before each contender (`sync; echo 3 >
/proc/sys/vm/drop_caches`: needs root), then the whole file (4 GiB by
default, common.big_file) is read into one page-aligned buffer, pre-faulted
before the clock starts (--fresh: not; see prefault()):

  readinto       the builtin file: open(path, "rb", buffering=0).readinto(buf),
                 looped (one read(2) returns at most 2 GiB)
  slurp-into     `await linuxaio.slurp(path, into=buf)` (page cache, 4 MiB chunks 16 deep)
  slurp-direct   `await linuxaio.slurp(path, into=buf, direct=True)` (O_DIRECT)
  fio            fio, sequential 1 MiB reads, iodepth 32, direct=1 (io_uring
                 engine, else libaio): the device's own figure

Required (issue 13): slurp-direct >= 0.9x fio.

    python benchmarks/w9_cold_seq_load.py [--size 4G] [--rounds 1]
    python benchmarks/w9_cold_seq_load.py --contender slurp-direct
    python benchmarks/w9_cold_seq_load.py --pairs 5 [--chunk 4M --depth 8]

--pairs N decides the requirement on a machine other jobs share: fio and
slurp-direct N times each, alternating (ABBA...), each pair back to back, and
the median of the N paired ratios with their range (the device's speed seen
by two runs minutes apart varies more than the contenders differ).  --chunk
and --depth set slurp's chunk size and reads in flight (linuxaio._slurp's
CHUNK and DEPTH) for the slurp contenders, to find what bounds it.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import common

CONTENDERS = ["readinto", "slurp-into", "slurp-direct", "fio"]


def run_fio(path: str, size: int) -> dict:
    for engine in ("io_uring", "libaio"):
        try:
            read = common.run_fio("--name=w9", f"--filename={path}", "--rw=read", "--bs=1M",
                                  "--iodepth=32", "--direct=1", f"--ioengine={engine}",
                                  f"--size={size}", "--readonly")
        except common.Skip as exc:
            skipped = str(exc)
            continue
        return {"mbps": round(read["bw_bytes"] / 1e6, 1),
                "seconds": round(read["runtime"] / 1000, 3), "note": f"fio {engine}"}
    return {"skipped": skipped}


def prefault(buf) -> None:
    """Touch every page of buf before the clock starts.  On this VM a first
    touch of memory costs ~7 us a page (1 GiB: ~2 s, more than reading it
    from the device): fio reuses one small buffer and never pays it, so
    with a fresh buffer every Python contender measures the faults."""
    import mmap
    try:
        buf.madvise(getattr(mmap, "MADV_POPULATE_WRITE", 23))
    except OSError:   # before Linux 5.14
        for i in range(0, len(buf), mmap.PAGESIZE):
            buf[i] = 0


def contender(name: str, path: str, size: int, fresh: bool = False, chunk: int = 0,
              depth: int = 0) -> dict:
    cold = common.drop_caches()
    if name == "fio":
        return dict(run_fio(path, size), cold=cold)
    import linuxaio
    from linuxaio import _slurp
    if chunk:
        _slurp.CHUNK = chunk
    if depth:
        _slurp.DEPTH = depth
    buf = linuxaio.aligned_buffer(size)
    if not fresh:
        prefault(buf)
    view = memoryview(buf)
    t0 = time.perf_counter()
    if name == "readinto":
        got = 0
        with open(path, "rb", buffering=0) as f:
            while got < size:
                n = f.readinto(view[got:])
                if not n:
                    break
                got += n
    elif name in ("slurp-into", "slurp-direct"):
        import asyncio
        got = asyncio.run(linuxaio.slurp(path, into=buf, direct=name == "slurp-direct"))
    else:
        raise SystemExit(f"unknown contender {name!r}; have {', '.join(CONTENDERS)}")
    dt = time.perf_counter() - t0
    assert got == size, (got, size)
    with open(path, "rb") as f:   # spot checks: the start, the middle, the end
        for off in (0, size // 2 + 12345, size - 4096):
            f.seek(off)
            assert f.read(4096) == bytes(view[off:off + 4096]), off
    return {"mbps": round(size / dt / 1e6, 1), "seconds": round(dt, 3), "cold": cold,
            "chunk": _slurp.CHUNK, "depth": _slurp.DEPTH, "engine": linuxaio.engine()}


def run_one(name: str, args) -> dict | None:
    cmd = [sys.executable, __file__, "--contender", name, "--size", str(args.size),
           "--chunk", str(args.chunk), "--depth", str(args.depth)] + (["--fresh"] if args.fresh else [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        print(name, "failed:", proc.stderr[-2000:], file=sys.stderr)
        return None
    return common.last_json(proc.stdout)


def pairs(args) -> None:
    """fio and slurp-direct, alternating; the paired ratios' median."""
    ratios, rows = [], []
    for i in range(args.pairs):
        order = ("fio", "slurp-direct") if i % 2 == 0 else ("slurp-direct", "fio")
        got = {name: run_one(name, args) for name in order}
        if not all(got.values()) or "skipped" in got["fio"]:
            raise SystemExit(f"a run failed: {got}")
        ratios.append(got["slurp-direct"]["mbps"] / got["fio"]["mbps"])
        rows.append(got)
        print(f"pair {i + 1}: fio {got['fio']['mbps']} MB/s, slurp-direct {got['slurp-direct']['mbps']} "
              f"MB/s ({got['slurp-direct']['engine']}, chunk {got['slurp-direct']['chunk'] >> 20} MiB x "
              f"{got['slurp-direct']['depth']}): {ratios[-1]:.2f}x", flush=True)
    ratios.sort()
    print(f"W9 pairs: slurp-direct / fio: median {ratios[len(ratios) // 2]:.2f}x, "
          f"range {ratios[0]:.2f}-{ratios[-1]:.2f}x over {len(ratios)} pairs")
    print(json.dumps({"ratios": ratios, "runs": rows}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--contender")
    ap.add_argument("--size", type=common.parse_size, default=4 * common.GiB)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--fresh", action="store_true",
                    help="read into a fresh (never touched) buffer: the page faults count")
    ap.add_argument("--chunk", type=common.parse_size, default=0,
                    help="slurp's chunk size (default: linuxaio._slurp.CHUNK)")
    ap.add_argument("--depth", type=int, default=0,
                    help="slurp's reads in flight (default: linuxaio._slurp.DEPTH)")
    ap.add_argument("--pairs", type=int, default=0,
                    help="fio and slurp-direct N times each, alternating: paired ratios")
    args = ap.parse_args()
    path = str(common.big_file(args.size))
    if args.contender:
        print(json.dumps(contender(args.contender, path, args.size, args.fresh, args.chunk, args.depth)))
        return
    if args.pairs:
        pairs(args)
        return
    rows: dict[str, list[dict]] = {}
    for _ in range(args.rounds):
        for name in CONTENDERS:
            row = run_one(name, args)
            if row is not None:
                rows.setdefault(name, []).append(row)
    fio = rows.get("fio", [{}])
    fio_mbps = sorted(r.get("mbps", 0) for r in fio)[len(fio) // 2]
    print(f"W9: cold sequential load of {args.size >> 20} MiB into "
          f"{'a fresh' if args.fresh else 'a pre-faulted'} page-aligned buffer")
    print(f"{'contender':14} {'MB/s':>9} {'x fio':>7}")
    for name, runs in rows.items():
        if "skipped" in runs[0]:
            print(f"{name:14} skipped: {runs[0]['skipped']}")
            continue
        runs.sort(key=lambda r: r["mbps"])
        med = runs[len(runs) // 2]
        ratio = f"{med['mbps'] / fio_mbps:.2f}x" if fio_mbps else "-"
        print(f"{name:14} {med['mbps']:>9} {ratio:>7}" + ("" if med.get("cold") else "  (caches NOT dropped)"))


if __name__ == "__main__":
    main()
