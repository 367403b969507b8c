"""W7: walk the small-file tree (default 20,000 files) and stat every path in it.

One operation is one path: each of the tree's files and directories (and
its manifest), reached by the walk and stat'ed. The passes over the tree
repeat until --seconds have passed.
  plain:           os.walk + os.stat of every directory and file
  pathlib:         for p in pathlib.Path(root).rglob("*"): p.stat()
  linuxaio-LOOP:   async for p in linuxaio.Path(root).rglob("*"): await p.stat()
  linuxaio-with-stat[-LOOP]: async for p, st in linuxaio.Path(root).rglob("*").with_stat()
  linuxaio-walk-only: the rglob alone, no stat (what the walk itself costs)
  anyio:           async for p in anyio.Path(root).rglob("*"): await p.stat()
python benchmarks/w7_tree_walk.py --contender NAME [--files 20000]   (--list: the names)
"""

import os
import pathlib

import common

CONTENDERS = common.Contenders()


def expected_count(root) -> int:
    """The paths rglob("*") yields under root: every directory and file below it."""
    n = 0
    for _, dirs, files in os.walk(root):
        n += len(dirs) + len(files)
    return n


@CONTENDERS.add("plain")
def plain(args):
    """os.walk + os.stat of every directory and file."""
    root = args.tree
    stat, join, walk = os.stat, os.path.join, os.walk

    def one_pass():
        n = 0
        for d, dirs, files in walk(root):
            for name in dirs:
                stat(join(d, name))
            for name in files:
                stat(join(d, name))
            n += len(dirs) + len(files)
        return n

    count = one_pass()

    def run(budget):
        return common.repeat_passes(one_pass, budget) * count, None

    return common.measure(run, args, note="os.walk + os.stat(os.path.join(dir, name))")


@CONTENDERS.add("pathlib")
def pathlib_walk(args):
    """The synchronous pathlib loop that the async Paths imitate."""
    root = pathlib.Path(args.tree)
    count = expected_count(root)

    def one_pass():
        for p in root.rglob("*"):
            p.stat()

    def run(budget):
        return common.repeat_passes(one_pass, budget) * count, None

    return common.measure(run, args, note='for p in Path(root).rglob("*"): p.stat()')


def linuxaio_path():
    aio = common.import_linuxaio_async()
    cls = getattr(aio, "Path", None)
    if cls is None:
        try:
            from linuxaio._path import Path as cls
        except ImportError:
            raise common.Skip("linuxaio has no Path yet") from None
    return aio, cls


def async_walk(args, walk_pass, loop, note):
    """walk_pass(root) -> paths seen; passes repeated for the budget, after a
    check that one pass sees every path."""
    count = expected_count(args.tree)

    async def one_pass():
        n = await walk_pass()
        if n != count:
            raise AssertionError(f"walk saw {n} paths, os.walk {count}")

    async def run(budget):
        return await common.async_passes(one_pass, budget) * count, None

    return common.measure_async(run, args, loop, setup=one_pass, note=note)


def linuxaio_stat_each(args, loop):
    _, Path = linuxaio_path()
    root = Path(args.tree)

    async def walk_pass():
        n = 0
        async for p in root.rglob("*"):
            await p.stat()
            n += 1
        return n

    return async_walk(args, walk_pass, loop,
                      'async for p in linuxaio.Path(root).rglob("*"): await p.stat()')


def linuxaio_with_stat(args, loop):
    _, Path = linuxaio_path()
    root = Path(args.tree)

    async def walk_pass():
        n = 0
        async for p, st in root.rglob("*").with_stat():
            n += 1
        return n

    return async_walk(args, walk_pass, loop,
                      'async for p, st in linuxaio.Path(root).rglob("*").with_stat()')


for _loop in common.LOOPS:
    CONTENDERS.add(f"linuxaio-{_loop}")(
        lambda args, loop=_loop: linuxaio_stat_each(args, loop))
for _loop in common.LOOPS:
    name = "linuxaio-with-stat" + ("" if _loop == "asyncio" else f"-{_loop}")
    CONTENDERS.add(name)(lambda args, loop=_loop: linuxaio_with_stat(args, loop))


@CONTENDERS.add("linuxaio-walk-only")
def linuxaio_walk_only(args):
    _, Path = linuxaio_path()
    root = Path(args.tree)

    async def walk_pass():
        n = 0
        async for _ in root.rglob("*"):
            n += 1
        return n

    return async_walk(args, walk_pass, "asyncio",
                      'async for p in linuxaio.Path(root).rglob("*"): pass (no stat)')


@CONTENDERS.add("anyio")
def anyio_walk(args):
    anyio = common.need("anyio")
    root = anyio.Path(args.tree)

    async def walk_pass():
        n = 0
        async for p in root.rglob("*"):
            await p.stat()
            n += 1
        return n

    return async_walk(args, walk_pass, "asyncio",
                      'async for p in anyio.Path(root).rglob("*"): await p.stat() '
                      "(a worker-thread hop per path and per stat)")


def tree_args(doc):
    p = common.parser(doc, depth=64)
    p.add_argument("--tree", help="small-file tree (default: made under --dir)")
    p.add_argument("--files", type=int, default=20000, help="files in the default tree")
    p.add_argument("--seed", type=int, default=1, help="seed of the default tree")
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
