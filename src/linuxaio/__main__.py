"""Command line: ``python -m linuxaio bench`` (also the ``linuxaio`` script)."""
from __future__ import annotations

import argparse
import os
import sys

from . import _bench


def _size(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    text = text.strip().lower().rstrip("ib")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def bench(args: argparse.Namespace) -> int:
    import linuxaio

    if args.threads:
        linuxaio.min_parallel(args.threads)
        linuxaio.max_parallel(args.threads)
    path, created = _bench.make_file(args.file, args.size)
    try:
        flags = os.O_RDWR if args.write else os.O_RDONLY
        fd = os.open(path, flags)
        size = os.fstat(fd).st_size
        op = "write" if args.write else "read"
        print(f"linuxaio bench: random {args.bs} B {op}s of {path} ({size / 2**20:.0f} MiB), "
              f"{args.qd} in flight, {args.seconds:g} s each, {args.threads or 'default'} threads", flush=True)
        results = []
        for runner in ("linuxaio", "plain"):
            resident = _bench.warm(path)
            print(f"  page cache: {resident:.0%} of the file resident before the {runner} run", flush=True)
            if runner == "linuxaio":
                r = _bench.run_linuxaio(fd, size, args.bs, args.qd, args.seconds, args.write, args.quiet)
            else:
                r = _bench.run_plain(fd, size, args.bs, args.seconds, args.write, args.quiet)
            results.append(r)
        os.close(fd)
    finally:
        if created and args.file is None:
            os.unlink(path)
    print(f"{'':12} {'IOPS':>12} {'MB/s':>9} {'p50 us':>9} {'p99 us':>9}")
    for r in results:
        print(f"{r.name:12} {r.iops:12,.0f} {r.mbps:9.1f} {r.percentile(50):9.1f} {r.percentile(99):9.1f}")
    ratio = results[0].iops / results[1].iops
    print(f"ratio linuxaio / {results[1].name}: {ratio:.2f}x")
    print("(latency: submission to callback for linuxaio, one call for the plain loop)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="linuxaio", description="linuxaio tools")
    sub = parser.add_subparsers(dest="command")
    b = sub.add_parser("bench", help="random reads through the callback API vs a plain os.pread loop")
    b.add_argument("--file", help="file to read (default: a temporary file, removed afterwards)")
    b.add_argument("--size", type=_size, default=256 << 20, help="file size, e.g. 256M (default 256M)")
    b.add_argument("--bs", type=_size, default=4096, help="block size (default 4096)")
    b.add_argument("--qd", type=int, default=64, help="requests in flight (default 64)")
    b.add_argument("--threads", type=int, default=0, help="worker threads (default: the engine's)")
    b.add_argument("--seconds", type=float, default=5.0, help="length of each run (default 5)")
    b.add_argument("--write", action="store_true", help="random writes instead of reads")
    b.add_argument("--quiet", action="store_true", help="no progress line")
    args = parser.parse_args(argv)
    if args.command in (None, "bench"):
        if args.command is None:
            args = parser.parse_args(["bench"] + (argv or sys.argv[1:]))
        return bench(args)
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
