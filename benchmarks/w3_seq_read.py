"""W3: 1 MiB sequential reads of a cached file (wrapping at its end), 4 in flight.

The awaitable contenders run `depth` tasks on one event loop, each awaiting
the next 1 MiB block of the shared sequential position.
python benchmarks/w3_seq_read.py --contender NAME [--size 1G]   (--list: the names)
"""

import mmap
import os
import select
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


def async_seq(args, make_task, setup=None, **extra):
    """`depth` tasks reading the file sequentially (shared position, wrapping at
    the end); make_task(k, fd, next_offset) -> the coroutine function of task k,
    which awaits reads of next_offset() until it returns None and returns its
    read count.  setup(fd), awaited first in the loop, may check and open things."""
    fd = os.open(args.file, os.O_RDONLY)
    size = os.fstat(fd).st_size
    off = 0
    running, deadline = True, 0.0

    def next_offset():
        nonlocal off, running
        if running and perf_counter() >= deadline:
            running = False             # stop submitting; reads in flight drain
        if not running:
            return None
        o = off
        off += BS
        if off >= size:
            off = 0
        return o

    counts = []

    def wrap(task):
        async def work():
            counts.append(await task())
        return work
    tasks = [wrap(make_task(k, fd, next_offset)) for k in range(args.depth)]

    async def run(budget):
        nonlocal running, deadline
        running, deadline = True, perf_counter() + budget
        counts.clear()
        await common.run_tasks(tasks)
        done = sum(counts)
        return done, done * BS
    return common.measure_async(run, args, setup=setup and (lambda: setup(fd)), **extra)


def linuxaio_awaits(args, loop="asyncio"):
    """`depth` tasks, each awaiting linuxaio.os.preadinto into its own page-aligned
    1 MiB buffer from linuxaio.aligned_buffer, under `loop`."""
    aio = common.import_linuxaio_async()
    preadinto = aio.os.preadinto

    def make_task(k, fd, next_offset):
        buf = aio.aligned_buffer(BS)

        async def task():
            n = 0
            while (o := next_offset()) is not None:
                got = await preadinto(fd, buf, o)
                if got != BS:
                    raise OSError(f"short read at {o}: {got}")
                n += 1
            return n
        return task
    async def check(fd):
        buf = aio.aligned_buffer(BS)
        assert await preadinto(fd, buf, BS) == BS and buf[:] == os.pread(fd, BS, BS)
    return async_seq(args, make_task, check, loop=loop,
                     note="await linuxaio.os.preadinto(fd, aligned_buffer, off)")


for _loop in common.LOOPS:
    CONTENDERS.add(f"linuxaio-{_loop}")(
        lambda args, _loop=_loop: linuxaio_awaits(args, _loop))


@CONTENDERS.add("aiofile")
def aiofile_contender(args):
    """`depth` tasks, each awaiting AIOFile.read(1 MiB, offset) -> bytes, on
    aiofile's default caio context (one AIOFile shared by the tasks)."""
    aiofile = common.need("aiofile")
    caio = common.need("caio")
    afp = None

    async def setup(fd):
        nonlocal afp
        afp = aiofile.AIOFile(args.file, "rb")      # inside the loop: its caio context
        await afp.open()
        assert await afp.read(BS, BS) == os.pread(fd, BS, BS)

    def make_task(k, fd, next_offset):
        async def task():
            n = 0
            while (o := next_offset()) is not None:
                got = await afp.read(BS, o)
                if len(got) != BS:
                    raise OSError(f"short read at {o}: {len(got)}")
                n += 1
            return n
        return task
    backend = caio.AsyncioContext.__module__.removeprefix("caio.")
    return async_seq(args, make_task, setup,
                     note=f"AIOFile.read(1 MiB, off) -> bytes, caio backend {backend}")


@CONTENDERS.add("ioaio")
def ioaio(args):
    return common.run_perl("w3_ioaio.pl", "--file", args.file, "--seconds", args.seconds,
                           "--warmup", args.warmup, "--depth", args.depth)


@CONTENDERS.add("fio")
def fio(args):
    """fio, psync engine, 2 jobs (processes) each reading the file sequentially.
    --invalidate=0 keeps the page cache (fio drops it by default);
    --ramp_time is the warm-up, excluded from fio's figures."""
    read = common.run_fio(
        "--name=w3", "--rw=read", "--bs=1M", "--ioengine=psync", "--numjobs=2",
        f"--filename={args.file}", "--time_based", f"--runtime={int(args.seconds * 1000)}ms",
        f"--ramp_time={int(args.warmup * 1000)}ms", "--invalidate=0", "--group_reporting")
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
