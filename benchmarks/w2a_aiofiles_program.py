"""W2a: a typical aiofiles program -- read a file, write a file -- over 1,000 small files.

The program, as an aiofiles user writes it (asyncio, every file at once):

    async def copy(src, dst):
        async with aiofiles.open(src, "rb") as f:
            data = await f.read()
        async with aiofiles.open(dst, "wb") as f:
            await f.write(data)
    await asyncio.gather(*(copy(s, d) for s, d in pairs))

The contenders run that same text with `aiofiles` bound to aiofiles 25.1
(its thread pool: asyncio's default executor) or to linuxaio.aiofiles (the
one-line switch: `import linuxaio.aiofiles as aiofiles`).  A pass is the
1,000 copies; the bytes of each pass are checked against the manifest and
the copies against their sources before timing.  The reference is the plain
synchronous loop.
python benchmarks/w2a_aiofiles_program.py --contender NAME   (--list: the names)
"""

import os

import common
from w2s_stat import tree_args, tree_data

CONTENDERS = common.Contenders()


def _pairs(args):
    paths, sizes = common.read_manifest(args.tree)
    out = os.path.join(args.tree + "-w2a-out", str(os.getpid()))
    os.makedirs(out, exist_ok=True)
    dsts = [os.path.join(out, f"{i}.out") for i in range(len(paths))]
    return list(zip(paths, dsts)), sum(sizes), out


def _cleanup(out):
    import shutil
    shutil.rmtree(out, ignore_errors=True)


@CONTENDERS.add("plain")
def plain(args):
    """The synchronous program: with open(src) ... with open(dst, 'wb') ..."""
    pairs, total, out = _pairs(args)

    def one_pass():
        nbytes = 0
        for src, dst in pairs:
            with open(src, "rb") as f:
                data = f.read()
            with open(dst, "wb") as f:
                f.write(data)
            nbytes += len(data)
        assert nbytes == total, (nbytes, total)

    def run(budget):
        passes = common.repeat_passes(one_pass, budget)
        return passes * len(pairs), passes * total * 2

    try:
        return common.measure(run, args)
    finally:
        _cleanup(out)


def _program(args, aiofiles, loop, note):
    """The aiofiles program above, with `aiofiles` bound to the module given."""
    import asyncio
    pairs, total, out = _pairs(args)
    nbytes = 0

    async def copy(src, dst):
        nonlocal nbytes
        async with aiofiles.open(src, "rb") as f:
            data = await f.read()
        async with aiofiles.open(dst, "wb") as f:
            await f.write(data)
        nbytes += len(data)

    async def one_pass():
        nonlocal nbytes
        nbytes = 0
        await asyncio.gather(*(copy(s, d) for s, d in pairs))
        assert nbytes == total, (nbytes, total)

    async def run(budget):
        passes = await common.async_passes(one_pass, budget)
        return passes * len(pairs), passes * total * 2

    async def check():
        await one_pass()
        for src, dst in pairs[:5]:
            with open(src, "rb") as a, open(dst, "rb") as b:
                assert a.read() == b.read(), dst

    try:
        return common.measure_async(run, args, loop, setup=check, note=note)
    finally:
        _cleanup(out)


@CONTENDERS.add("aiofiles")
def aiofiles_contender(args):
    """The program on aiofiles 25.1 (each open, read, write, close a hop to
    asyncio's default executor)."""
    aiofiles = common.need("aiofiles")
    return _program(args, aiofiles, "asyncio",
                    f"aiofiles {getattr(aiofiles, '__version__', '')} under asyncio; "
                    "default executor".replace("  ", " "))


def _linuxaio(loop):
    def contender(args):
        common.import_linuxaio_async()
        try:
            import linuxaio.aiofiles as aiofiles
        except ImportError:
            raise common.Skip("linuxaio has no aiofiles module yet") from None
        return _program(args, aiofiles, loop,
                        f"import linuxaio.aiofiles as aiofiles; under {loop}")
    return contender


for _loop in ("asyncio", "uvloop"):
    CONTENDERS.add(f"linuxaio.aiofiles-{_loop}")(_linuxaio(_loop))


if __name__ == "__main__":
    parser = tree_args(__doc__.splitlines()[0])
    parser.set_defaults(files=1000)
    args = parser.parse_args()
    common.main(CONTENDERS, args, tree_data(args))
