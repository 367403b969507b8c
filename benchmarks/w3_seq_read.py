"""W3: 1 MiB sequential reads of a cached file (wrapping at its end), 4 in flight.

python benchmarks/w3_seq_read.py --contender plain|linuxaio|ioaio|fio [--size 1G]
"""

import json
import mmap
import os
import select
import shutil
import subprocess
from time import perf_counter

import common

BS = common.MiB
CONTENDERS = common.Contenders()


@CONTENDERS.add("plain")
def plain(args):
    """os.preadv into one preallocated page-aligned buffer, one read at a time."""
    fd = os.open(args.file, os.O_RDONLY)
    size = os.fstat(fd).st_size
    bufs = [mmap.mmap(-1, BS)]
    preadv = os.preadv

    def run(budget):
        deadline = perf_counter() + budget
        ops = off = 0
        while perf_counter() < deadline:
            if preadv(fd, bufs, off) != BS:
                raise OSError(f"short read at {off}")
            ops += 1
            off += BS
            if off >= size:
                off = 0
        return ops, ops * BS

    return common.measure(run, args)


@CONTENDERS.add("linuxaio")
def linuxaio_cb(args):
    """linuxaio callback API: `depth` aio_reads in flight into page-aligned
    1 MiB mmap buffers; each callback submits the next sequential read."""
    aio = common.import_linuxaio()
    fd = os.open(args.file, os.O_RDONLY)
    size = os.fstat(fd).st_size
    bufs = [mmap.mmap(-1, BS) for _ in range(args.depth)]
    pfd = aio.poll_fileno()
    aio_read = aio.aio_read
    off = done = 0
    running, deadline = True, 0.0
    errors = []

    def submit(buf, cb):
        nonlocal off
        aio_read(fd, off, BS, buf, 0, cb)
        off += BS
        if off >= size:
            off = 0

    def slot(buf):
        def cb(res):
            nonlocal done, running
            if isinstance(res, OSError) or res != BS:
                errors.append(res)
            done += 1
            if perf_counter() >= deadline:
                running = False             # stop submitting; the loop drains
            if running:
                submit(buf, cb)
        return cb
    callbacks = [slot(buf) for buf in bufs]

    def run(budget):
        nonlocal done, running, deadline
        done, running, deadline = 0, True, perf_counter() + budget
        for buf, cb in zip(bufs, callbacks):
            submit(buf, cb)
        while aio.nreqs():
            select.select([pfd], [], [])
            aio.poll_cb()
        if errors:
            raise OSError(f"aio_read failed: {errors[0]!r}")
        return done, done * BS

    return common.measure(run, args)


@CONTENDERS.add("ioaio")
def ioaio(args):
    return common.run_perl("w3_ioaio.pl", "--file", args.file, "--seconds", args.seconds,
                           "--warmup", args.warmup, "--depth", args.depth)


@CONTENDERS.add("fio")
def fio(args):
    """fio, psync engine, 2 jobs (processes) each reading the file sequentially.
    --invalidate=0 keeps the page cache (fio drops it by default);
    --ramp_time is the warm-up, excluded from fio's figures."""
    exe = shutil.which("fio")
    if not exe:
        raise common.Skip("not installed: fio")
    cmd = [exe, "--name=w3", "--rw=read", "--bs=1M", "--ioengine=psync", "--numjobs=2",
           f"--filename={args.file}", "--time_based", f"--runtime={int(args.seconds * 1000)}ms",
           f"--ramp_time={int(args.warmup * 1000)}ms", "--invalidate=0",
           "--group_reporting", "--output-format=json"]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True).stdout
    read = json.loads(out[out.index("{"):])["jobs"][0]["read"]
    seconds = read["runtime"] / 1000
    res = common.result(read["total_ios"], seconds, read["io_bytes"], jobs=2)
    res["iops"], res["mbps"] = round(read["iops"], 1), round(read["bw_bytes"] / 1e6, 2)
    return res


if __name__ == "__main__":
    p = common.parser(__doc__.splitlines()[0], depth=4)
    p.add_argument("--file", help="file to read (default: a --size file in --dir)")
    p.add_argument("--size", default="1G", help="size of the default file")
    args = p.parse_args()

    def data():
        args.file = args.file or str(common.big_file(common.parse_size(args.size), args.dir))
        return [args.file]
    common.main(CONTENDERS, args, data)
