"""W1: 4 KiB reads at random 4 KiB-aligned offsets of a cached file, 64 in flight.

python benchmarks/w1_random_read.py --contender plain|linuxaio|ioaio [--size 1G]
"""

import mmap
import os
import select
from time import perf_counter

import common

BS = 4096
CONTENDERS = common.Contenders()


@CONTENDERS.add("plain")
def plain(args):
    """One os.pread at a time."""
    fd = os.open(args.file, os.O_RDONLY)
    offsets = common.random_offsets(os.fstat(fd).st_size, BS)
    mask = len(offsets) - 1
    pread = os.pread

    def run(budget):
        deadline = perf_counter() + budget
        i = 0
        while perf_counter() < deadline:
            for _ in range(1024):           # look at the clock every 1024 reads
                pread(fd, BS, offsets[i & mask])
                i += 1
        return i, i * BS

    return common.measure(run, args)


@CONTENDERS.add("linuxaio")
def linuxaio_cb(args):
    """linuxaio callback API: `depth` aio_reads in flight, each into its own
    page-aligned slice of one mmap; each callback submits the next read.
    The clock is checked in the callbacks (every 1024 reads, as in `plain`):
    one poll_cb() call can run many thousands of callbacks."""
    aio = common.import_linuxaio()
    fd = os.open(args.file, os.O_RDONLY)
    offsets = common.random_offsets(os.fstat(fd).st_size, BS)
    mask = len(offsets) - 1
    mm = mmap.mmap(-1, args.depth * BS)
    bufs = [memoryview(mm)[k * BS:(k + 1) * BS] for k in range(args.depth)]
    pfd = aio.poll_fileno()
    aio_read = aio.aio_read
    i = done = 0
    running, deadline = True, 0.0
    errors = []

    def slot(buf):
        def cb(res):
            nonlocal i, done, running
            if isinstance(res, OSError):
                errors.append(res)
            done += 1
            if not done & 1023 and perf_counter() >= deadline:
                running = False             # stop submitting; the loop drains
            if running:
                aio_read(fd, offsets[i & mask], BS, buf, 0, cb)
                i += 1
        return cb
    callbacks = [slot(buf) for buf in bufs]

    def run(budget):
        nonlocal i, done, running, deadline
        done, running, deadline = 0, True, perf_counter() + budget
        for buf, cb in zip(bufs, callbacks):
            aio_read(fd, offsets[i & mask], BS, buf, 0, cb)
            i += 1
        while aio.nreqs():
            select.select([pfd], [], [])
            aio.poll_cb()
        if errors:
            raise errors[0]
        return done, done * BS

    return common.measure(run, args)


@CONTENDERS.add("ioaio")
def ioaio(args):
    return common.run_perl("w1_ioaio.pl", "--file", args.file, "--seconds", args.seconds,
                           "--warmup", args.warmup, "--depth", args.depth)


if __name__ == "__main__":
    p = common.parser(__doc__.splitlines()[0], depth=64)
    p.add_argument("--file", help="file to read (default: a --size file in --dir)")
    p.add_argument("--size", default="1G", help="size of the default file")
    args = p.parse_args()

    def data():
        args.file = args.file or str(common.big_file(common.parse_size(args.size), args.dir))
        return [args.file]
    common.main(CONTENDERS, args, data)
