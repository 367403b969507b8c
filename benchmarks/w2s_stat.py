"""W2s: stat of every file of a tree of small files (default 20,000), 64 in flight.

Whole passes over the file list are repeated until --seconds have passed.
The awaitable contenders run `depth` tasks on one event loop, each awaiting
the stat of the next file of the pass; linuxaio-stat-batch runs --batches
tasks, each awaiting linuxaio.os.stat_many of the next --chunk paths.
python benchmarks/w2s_stat.py --contender NAME [--files 20000]   (--list: the names)
"""

import os
import select

import common

CONTENDERS = common.Contenders()


@CONTENDERS.add("plain")
def plain(args):
    """An os.stat loop."""
    paths, _ = common.read_manifest(args.tree)
    stat = os.stat

    def one_pass():
        for p in paths:
            stat(p)

    def run(budget):
        return common.repeat_passes(one_pass, budget) * len(paths), None

    return common.measure(run, args)


@CONTENDERS.add("linuxaio")
def linuxaio_cb(args):
    """linuxaio callback API: `depth` aio_stats in flight, each callback
    submitting the stat of the next file."""
    aio = common.import_linuxaio()
    paths, _ = common.read_manifest(args.tree)
    n = len(paths)
    pfd = aio.poll_fileno()
    aio_stat = aio.aio_stat
    nxt = 0
    errors = []

    def cb(res):
        nonlocal nxt
        if isinstance(res, OSError):
            errors.append(res)
        if nxt < n:
            aio_stat(paths[nxt], cb)
            nxt += 1

    def one_pass():
        nonlocal nxt
        nxt = 0
        for _ in range(min(args.depth, n)):
            aio_stat(paths[nxt], cb)
            nxt += 1
        while aio.nreqs():
            select.select([pfd], [], [])
            aio.poll_cb()
        if errors:
            raise errors[0]

    def run(budget):
        return common.repeat_passes(one_pass, budget) * n, None

    return common.measure(run, args)


def async_stats(args, stat, loop="asyncio", **extra):
    """`depth` tasks, each awaiting stat(path) of the next file of the pass."""
    paths, _ = common.read_manifest(args.tree)
    n = len(paths)
    nxt = 0

    async def work():
        nonlocal nxt
        while nxt < n:
            p = paths[nxt]
            nxt += 1
            await stat(p)

    async def one_pass():
        nonlocal nxt
        nxt = 0
        await common.run_tasks([work] * args.depth)

    async def run(budget):
        return await common.async_passes(one_pass, budget) * n, None

    async def check():
        for p in paths[:3]:
            assert await stat(p) == os.stat(p), p
    return common.measure_async(run, args, loop, setup=check, **extra)


@CONTENDERS.add("linuxaio-stat")
def linuxaio_stat(args):
    aio = common.import_linuxaio_async()
    return async_stats(args, aio.os.stat, note="await linuxaio.os.stat(path)")


@CONTENDERS.add("linuxaio-stat-uvloop")
def linuxaio_stat_uvloop(args):
    aio = common.import_linuxaio_async()
    return async_stats(args, aio.os.stat, "uvloop", note="await linuxaio.os.stat(path) under uvloop")


@CONTENDERS.add("linuxaio-stat-trio")
def linuxaio_stat_trio(args):
    aio = common.import_linuxaio_async()
    return async_stats(args, aio.os.stat, "trio", note="await linuxaio.os.stat(path) under trio")


@CONTENDERS.add("aiofiles")
def aiofiles_stat(args):
    aiofiles_os = common.need("aiofiles.os")
    return async_stats(args, aiofiles_os.stat, note="await aiofiles.os.stat(path)")


@CONTENDERS.add("linuxaio-stat-batch")
def linuxaio_stat_batch(args):
    """--batches tasks, each awaiting linuxaio.os.stat_many(next --chunk paths)."""
    aio = common.import_linuxaio_async()
    stat_many = aio.os.stat_many
    paths, _ = common.read_manifest(args.tree)
    n, chunk = len(paths), args.chunk
    nxt = 0

    async def work():
        nonlocal nxt
        while nxt < n:
            k = nxt
            nxt += chunk
            await stat_many(paths[k:k + chunk])

    async def one_pass():
        nonlocal nxt
        nxt = 0
        await common.run_tasks([work] * args.batches)

    async def run(budget):
        return await common.async_passes(one_pass, budget) * n, None

    async def check():
        assert await stat_many(paths[:3]) == [os.stat(p) for p in paths[:3]]
    return common.measure_async(
        run, args, setup=check,
        note=f"{args.batches} tasks x await linuxaio.os.stat_many({chunk} paths)")


@CONTENDERS.add("ioaio")
def ioaio(args):
    return common.run_perl("w2s_ioaio.pl", "--tree", args.tree, "--seconds", args.seconds,
                           "--warmup", args.warmup, "--depth", args.depth)


def tree_args(doc):
    p = common.parser(doc, depth=64)
    p.add_argument("--tree", help="small-file tree (default: made under --dir)")
    p.add_argument("--files", type=int, default=20000, help="files in the default tree")
    p.add_argument("--seed", type=int, default=1, help="seed of the default tree")
    p.add_argument("--chunk", type=int, default=256,
                   help="W2s linuxaio-stat-batch: paths per stat_many call")
    p.add_argument("--batches", type=int, default=4,
                   help="W2s linuxaio-stat-batch: stat_many calls in flight")
    return p


def tree_data(args):
    """data() for common.main: make/find the tree, return its file paths."""
    def data():
        args.tree = args.tree or str(common.small_tree(args.files, args.seed, args.dir))
        return common.read_manifest(args.tree)[0]
    return data


if __name__ == "__main__":
    args = tree_args(__doc__.splitlines()[0]).parse_args()
    common.main(CONTENDERS, args, tree_data(args))
