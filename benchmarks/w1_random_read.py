"""W1: 4 KiB reads at random 4 KiB-aligned offsets of a cached file, 64 in flight.

python benchmarks/w1_random_read.py --contender NAME [--size 1G]   (--list: the names)

Callback contenders: plain, linuxaio, ioaio.  Awaitable contenders: `depth`
tasks on one event loop, each awaiting one read at a time in a loop and
getting the bytes back (see ASYNC_READERS), plus linuxaio-batch(-trio).
"""

import contextlib
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


# ------------------------------------------------------ awaitable contenders
#
# All of them: `depth` tasks on one event loop; each task awaits one 4 KiB read
# at a time, in a loop, and gets the bytes back.  The tasks share one counter
# into the same offset table as `plain` (offsets[i & mask]), and the clock is
# read every 1024 completions, as in the callback contenders: the task that
# sees the deadline stops them all, and the reads in flight then drain.

def w1_load(fd, offsets, readers):
    """run(budget) -> (ops, nbytes): one task per reader; a reader is
    read(fd, n, offset) -> an awaitable of the bytes."""
    mask = len(offsets) - 1
    i = done = 0
    running, deadline = True, 0.0

    def task(read):
        async def work():
            nonlocal i, done, running
            while running:
                off = offsets[i & mask]
                i += 1
                await read(fd, BS, off)
                done += 1
                if not done & 1023 and perf_counter() >= deadline:
                    running = False
        return work
    tasks = [task(read) for read in readers]

    async def run(budget):
        nonlocal done, running, deadline
        done, running, deadline = 0, True, perf_counter() + budget
        await common.run_tasks(tasks)
        return done, done * BS
    return run


def w1_batch_load(fd, offsets, depth, pread_many, per_call=64):
    """run(budget): `depth` tasks, each awaiting pread_many(fd, [(BS, off)] * per_call)
    in a loop; one call counts as per_call reads.  Call k reads
    offsets[k*per_call : (k+1)*per_call], the same sequence as plain's."""
    n = len(offsets)
    assert n % per_call == 0
    i = done = 0
    running, deadline = True, 0.0

    async def work():
        nonlocal i, done, running
        while running:
            base = i
            i = (i + per_call) % n
            await pread_many(fd, [(BS, off) for off in offsets[base:base + per_call]])
            done += per_call
            if perf_counter() >= deadline:
                running = False

    async def run(budget):
        nonlocal done, running, deadline
        done, running, deadline = 0, True, perf_counter() + budget
        await common.run_tasks([work] * depth)
        return done, done * BS
    return run


async def check_readers(fd, offsets, readers):
    """Each reader returns the same bytes as os.pread (untimed)."""
    for read in readers:
        for off in offsets[:2]:
            got = await read(fd, BS, off)
            if bytes(got) != os.pread(fd, BS, off):
                raise AssertionError(f"wrong bytes at offset {off}: {len(got)} bytes")


# name -> (loop, factory).  factory(args) is an async context manager, entered
# inside the running loop, that yields (readers, note): `depth` read callables
# read(fd, n, offset) -> awaitable of the bytes (one per task; most contenders
# give every task the same one), and a note for the results (backend, pool size).
ASYNC_READERS = {}


def async_reader(name, loop="asyncio"):
    def deco(factory):
        ASYNC_READERS[name] = (loop, contextlib.asynccontextmanager(factory))
        CONTENDERS.add(name)(lambda args: run_async_reader(args, name))
        return factory
    return deco


def run_async_reader(args, name):
    loop, factory = ASYNC_READERS[name]
    fd = os.open(args.file, os.O_RDONLY)
    offsets = common.random_offsets(os.fstat(fd).st_size, BS)

    async def main():
        async with factory(args) as (readers, note):
            await check_readers(fd, offsets, readers)
            run = w1_load(fd, offsets, readers)
            return await common.timed(run, args, loop=loop, note=note)
    return common.run_loop(main, loop)


def _linuxaio_reader(loop):
    async def factory(args):
        aio = common.import_linuxaio_async()
        yield [aio.os.pread] * args.depth, f"await linuxaio.os.pread under {loop}"
    return factory


for _loop in common.LOOPS:
    async_reader(f"linuxaio-{_loop}", _loop)(_linuxaio_reader(_loop))


@async_reader("aiofiles")
async def aiofiles_reader(args):
    """aiofiles has no positional read (aiofiles.os has no pread), so each task
    opens its own file object (default buffering) and does seek + read: two
    thread hops per read.  An aiofiles file object cannot be shared by tasks
    that seek."""
    aiofiles = common.need("aiofiles")
    async with contextlib.AsyncExitStack() as stack:
        files = [await stack.enter_async_context(aiofiles.open(args.file, "rb"))
                 for _ in range(args.depth)]

        def reader(f):
            async def read(fd, n, off):
                await f.seek(off)
                return await f.read(n)
            return read
        yield ([reader(f) for f in files],
               f"per-task aiofiles.open(rb): await f.seek(off); await f.read(n); "
               f"default executor ({_default_workers()} threads)")


def _default_workers():
    return min(32, (os.cpu_count() or 1) + 4)   # ThreadPoolExecutor's default


@async_reader("aiofile")
async def aiofile_reader(args):
    """aiofile's AIOFile.read(size, offset) on its default caio context."""
    aiofile = common.need("aiofile")
    caio = common.need("caio")
    afp = aiofile.AIOFile(args.file, "rb")
    await afp.open()
    try:
        def read(fd, n, off):
            return afp.read(n, off)
        backend = caio.AsyncioContext.__module__.removeprefix("caio.")
        yield [read] * args.depth, f"AIOFile.read(n, off), caio backend {backend}"
    finally:
        await afp.close()


@async_reader("anyio")
async def anyio_reader(args):
    """anyio.to_thread.run_sync(os.pread, ...) under asyncio."""
    anyio = common.need("anyio")
    run_sync, pread = anyio.to_thread.run_sync, os.pread
    limit = anyio.to_thread.current_default_thread_limiter().total_tokens

    def read(fd, n, off):
        return run_sync(pread, fd, n, off)
    yield [read] * args.depth, f"anyio.to_thread.run_sync(os.pread) under asyncio, limiter {limit:g} threads"


@async_reader("trio-to-thread", "trio")
async def trio_thread_reader(args):
    """trio.to_thread.run_sync(os.pread, ...)."""
    trio = common.need("trio")
    run_sync, pread = trio.to_thread.run_sync, os.pread
    limit = trio.to_thread.current_default_thread_limiter().total_tokens

    def read(fd, n, off):
        return run_sync(pread, fd, n, off)
    yield [read] * args.depth, f"trio.to_thread.run_sync(os.pread), limiter {limit:g} threads"


@async_reader("run_in_executor")
async def executor_reader(args):
    """loop.run_in_executor(None, os.pread, ...): asyncio's default thread pool."""
    import asyncio
    run_in_executor, pread = asyncio.get_running_loop().run_in_executor, os.pread

    def read(fd, n, off):
        return run_in_executor(None, pread, fd, n, off)
    yield [read] * args.depth, f"default executor ({_default_workers()} threads)"


@async_reader("pyaio")
async def pyaio_reader(args):
    """pyaio 0.5's awaitable API: pyaio.uring.UringIO().read(fd, offset, n),
    io_uring, default entries (256); it returns a bytearray."""
    uring = common.need("pyaio.uring")
    try:
        io = uring.UringIO()
    except OSError as exc:
        raise common.Skip(f"pyaio: {exc}") from None
    try:
        def read(fd, n, off):
            return io.read(fd, off, n)
        yield [read] * args.depth, "UringIO().read(fd, off, n) -> bytearray, io_uring"
    finally:
        await io.aclose()


def _linuxaio_batch(loop):
    def contender(args):
        """`depth` tasks, each awaiting linuxaio.os.pread_many(fd, 64 x (BS, off))."""
        aio = common.import_linuxaio_async()
        fd = os.open(args.file, os.O_RDONLY)
        offsets = common.random_offsets(os.fstat(fd).st_size, BS)
        run = w1_batch_load(fd, offsets, args.depth, aio.os.pread_many)

        async def check():
            got = await aio.os.pread_many(fd, [(BS, off) for off in offsets[:4]])
            if got != [os.pread(fd, BS, off) for off in offsets[:4]]:
                raise AssertionError("pread_many returned wrong bytes")
            return {"note": f"{args.depth} tasks x await linuxaio.os.pread_many(64 reads) under {loop}"}
        return common.measure_async(run, args, loop, setup=check)
    return contender


CONTENDERS.add("linuxaio-batch")(_linuxaio_batch("asyncio"))
CONTENDERS.add("linuxaio-batch-trio")(_linuxaio_batch("trio"))


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
