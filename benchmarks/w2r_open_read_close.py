"""W2r: open + read whole + close of every file of the small-file tree, 64 files in flight.

Each file is read with ONE read of MAX bytes (the largest file size), which
returns the whole file; the byte count is checked against the manifest.
Whole passes are repeated until --seconds have passed.
python benchmarks/w2r_open_read_close.py --contender plain|linuxaio|ioaio
"""

import mmap
import os
import select

import common
from w2s_stat import tree_args, tree_data

MAX = common.SMALL_MAX
CONTENDERS = common.Contenders()


@CONTENDERS.add("plain")
def plain(args):
    """os.open / os.read / os.close, one file at a time."""
    paths, sizes = common.read_manifest(args.tree)
    total = sum(sizes)
    o_open, o_read, o_close, RDONLY = os.open, os.read, os.close, os.O_RDONLY

    def one_pass():
        nbytes = 0
        for p in paths:
            fd = o_open(p, RDONLY)
            nbytes += len(o_read(fd, MAX))
            o_close(fd)
        assert nbytes == total, (nbytes, total)

    def run(budget):
        passes = common.repeat_passes(one_pass, budget)
        return passes * len(paths), passes * total

    return common.measure(run, args)


@CONTENDERS.add("linuxaio")
def linuxaio_cb(args):
    """linuxaio callback API: per file aio_open -> aio_read -> aio_close, `depth`
    files in flight, each with its own page-aligned MAX-byte buffer (one mmap)."""
    aio = common.import_linuxaio()
    paths, sizes = common.read_manifest(args.tree)
    n, total = len(paths), sum(sizes)
    pfd = aio.poll_fileno()
    aio_open, aio_read, aio_close, RDONLY = aio.aio_open, aio.aio_read, aio.aio_close, os.O_RDONLY
    mm = mmap.mmap(-1, args.depth * MAX)
    nxt = nbytes = 0
    errors = []

    def start(on_open):
        nonlocal nxt
        if nxt < n:
            aio_open(paths[nxt], RDONLY, 0, on_open)
            nxt += 1

    def slot(buf):
        fd = -1

        def on_open(res):
            nonlocal fd
            if isinstance(res, OSError):
                errors.append(res)
                return start(on_open)
            fd = res
            aio_read(fd, 0, MAX, buf, 0, on_read)

        def on_read(res):
            nonlocal nbytes
            if isinstance(res, OSError):
                errors.append(res)
            else:
                nbytes += res
            aio_close(fd, on_close)

        def on_close(res):
            if isinstance(res, OSError):
                errors.append(res)
            start(on_open)
        return on_open
    slots = [slot(memoryview(mm)[k * MAX:(k + 1) * MAX]) for k in range(args.depth)]

    def one_pass():
        nonlocal nxt, nbytes
        nxt = nbytes = 0
        for on_open in slots:
            start(on_open)
        while aio.nreqs():
            select.select([pfd], [], [])
            aio.poll_cb()
        if errors:
            raise errors[0]
        assert nbytes == total, (nbytes, total)

    def run(budget):
        passes = common.repeat_passes(one_pass, budget)
        return passes * n, passes * total

    return common.measure(run, args)


@CONTENDERS.add("ioaio")
def ioaio(args):
    return common.run_perl("w2r_ioaio.pl", "--tree", args.tree, "--seconds", args.seconds,
                           "--warmup", args.warmup, "--depth", args.depth)


if __name__ == "__main__":
    args = tree_args(__doc__.splitlines()[0]).parse_args()
    common.main(CONTENDERS, args, tree_data(args))
