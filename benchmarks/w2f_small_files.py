"""W2f: every file of the small-file tree read whole through a file object, 64 files in flight.

Each file: `async with <open>(p, "rb") as f: data = await f.read()` -- open,
read to the end, close -- in `depth` tasks on one event loop, each taking the
next file of the pass.  The byte total of each pass is checked against the
manifest.  Whole passes are repeated until --seconds have passed.  The
reference is the plain synchronous loop `with open(p, "rb") as f: f.read()`.
python benchmarks/w2f_small_files.py --contender NAME   (--list: the names)
"""

import common
from w2s_stat import tree_args, tree_data

CONTENDERS = common.Contenders()


@CONTENDERS.add("plain")
def plain(args):
    """The builtin open() in a plain loop: with open(p, 'rb') as f: f.read()."""
    paths, sizes = common.read_manifest(args.tree)
    total = sum(sizes)

    def one_pass():
        nbytes = 0
        for p in paths:
            with open(p, "rb") as f:
                nbytes += len(f.read())
        assert nbytes == total, (nbytes, total)

    def run(budget):
        passes = common.repeat_passes(one_pass, budget)
        return passes * len(paths), passes * total

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
            data = await read_file(p)
            nbytes += len(data)

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


def linuxaio_open():
    """linuxaio.open (the async file objects), or Skip."""
    aio = common.import_linuxaio_async()
    aopen = getattr(aio, "open", None)
    if aopen is None:
        try:
            from linuxaio._file import open as aopen
        except ImportError:
            raise common.Skip("linuxaio has no open() yet") from None
    return aopen


def _linuxaio(loop):
    def contender(args):
        aopen = linuxaio_open()

        async def read_file(p):
            async with aopen(p, "rb") as f:
                return await f.read()
        return async_files(args, read_file, loop,
                           note=f"async with linuxaio.open(p, 'rb') as f: await f.read() under {loop}")
    return contender


for _loop in common.LOOPS:
    CONTENDERS.add(f"linuxaio-{_loop}")(_linuxaio(_loop))


@CONTENDERS.add("aiofiles")
def aiofiles_contender(args):
    """async with aiofiles.open(p, 'rb') as f: await f.read()  (open, read and
    close each a hop to asyncio's default executor)."""
    aiofiles = common.need("aiofiles")
    aopen = aiofiles.open

    async def read_file(p):
        async with aopen(p, "rb") as f:
            return await f.read()
    return async_files(args, read_file,
                       note="async with aiofiles.open(p, 'rb') as f: await f.read(); default executor")


@CONTENDERS.add("anyio")
def anyio_contender(args):
    """async with await anyio.open_file(p, 'rb') as f: await f.read() under asyncio
    (each call a hop to anyio's worker threads)."""
    anyio = common.need("anyio")
    open_file = anyio.open_file

    async def read_file(p):
        async with await open_file(p, "rb") as f:
            return await f.read()
    return async_files(args, read_file,
                       note="async with await anyio.open_file(p, 'rb') as f: await f.read() "
                            "under asyncio (anyio worker threads)")


if __name__ == "__main__":
    args = tree_args(__doc__.splitlines()[0]).parse_args()
    common.main(CONTENDERS, args, tree_data(args))
