"""W2r: open + read whole + close of every file of the small-file tree, 64 files in flight.

Each file is read with ONE read of MAX bytes (the largest file size), which
returns the whole file; the byte count is checked against the manifest.
Whole passes are repeated until --seconds have passed.  The awaitable
contenders run `depth` tasks on one event loop, each taking the next file of
the pass and awaiting its whole content (bytes back).
python benchmarks/w2r_open_read_close.py --contender NAME   (--list: the names)
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


def async_files(args, read_file, loop="asyncio", **extra):
    """`depth` tasks, each awaiting read_file(path) -> bytes for the next file
    of the pass; the byte total of each pass is checked against the manifest."""
    paths, sizes = common.read_manifest(args.tree)
    n, total = len(paths), sum(sizes)
    nxt = nbytes = 0

    async def work():
        nonlocal nxt, nbytes
        while nxt < n:
            p = paths[nxt]
            nxt += 1
            data = await read_file(p)      # not `nbytes += len(await ...)`: that
            nbytes += len(data)            # reads nbytes before the await

    async def one_pass():
        nonlocal nxt, nbytes
        nxt = nbytes = 0
        await common.run_tasks([work] * args.depth)
        assert nbytes == total, (nbytes, total)

    async def run(budget):
        passes = await common.async_passes(one_pass, budget)
        return passes * n, passes * total

    async def check():
        for p, size in zip(paths[:3], sizes[:3]):
            data = await read_file(p)
            with open(p, "rb") as f:
                assert data == f.read() and len(data) == size, p
    return common.measure_async(run, args, loop, setup=check, **extra)


@CONTENDERS.add("linuxaio-slurp")
def linuxaio_slurp(args):
    """await linuxaio.slurp(path): one engine request opens, sizes, reads and closes."""
    aio = common.import_linuxaio_async()
    return async_files(args, aio.slurp, note="await linuxaio.slurp(path)")


@CONTENDERS.add("linuxaio-slurp-uvloop")
def linuxaio_slurp_uvloop(args):
    aio = common.import_linuxaio_async()
    return async_files(args, aio.slurp, "uvloop", note="await linuxaio.slurp(path) under uvloop")


@CONTENDERS.add("linuxaio-slurp-trio")
def linuxaio_slurp_trio(args):
    aio = common.import_linuxaio_async()
    return async_files(args, aio.slurp, "trio", note="await linuxaio.slurp(path) under trio")


@CONTENDERS.add("aiofiles")
def aiofiles_contender(args):
    """async with aiofiles.open(p, 'rb') as f: await f.read()  (open, read, close:
    each a hop to asyncio's default executor; read() reads to EOF)."""
    aiofiles = common.need("aiofiles")
    aopen = aiofiles.open

    async def read_file(p):
        async with aopen(p, "rb") as f:
            return await f.read()
    return async_files(args, read_file, note="async with aiofiles.open(p, 'rb') as f: await f.read()")


@CONTENDERS.add("ioaio")
def ioaio(args):
    return common.run_perl("w2r_ioaio.pl", "--tree", args.tree, "--seconds", args.seconds,
                           "--warmup", args.warmup, "--depth", args.depth)


if __name__ == "__main__":
    args = tree_args(__doc__.splitlines()[0]).parse_args()
    common.main(CONTENDERS, args, tree_data(args))
