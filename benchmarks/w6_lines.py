"""W6: line-by-line read of a 10 MB text file of 80-character lines.

`async for line in f` over `<open>(path)` (text mode, UTF-8), one task,
against the builtin file in a plain `for line in f` loop.  Every contender
reads lines until --seconds have passed, going back to the start of the file
at its end (so the slow peers need not finish a whole pass); one line counts
as one operation.  The deadline is checked every 1024 lines.
python benchmarks/w6_lines.py --contender NAME [--size 10M | --file PATH]   (--list: the names)
"""

import contextlib
import os
import random
from pathlib import Path
from time import perf_counter

import common

CONTENDERS = common.Contenders()
LINE = 80            # characters per line, the newline included
CHECK_EVERY = 1024   # lines between deadline checks


def lines_file(size: int, data_dir: Path) -> Path:
    """A text file of `size` bytes of 80-character ASCII lines, made once."""
    path = Path(data_dir) / f"lines-{size}.txt"
    if path.exists() and path.stat().st_size == size:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(6)
    letters = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    pool = ["".join(rng.choice(letters) for _ in range(LINE - 1)) + "\n" for _ in range(997)]
    n = size // LINE
    text = "".join(pool[i % len(pool)] for i in range(n))
    text += "x" * (size - len(text) - 1) + "\n" if size > len(text) else ""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="ascii")
    os.replace(tmp, path)
    return path


@CONTENDERS.add("plain")
def plain(args):
    """The builtin open(path) (text, UTF-8) in a plain `for line in f` loop."""
    path = args.path

    def run(budget):
        deadline = perf_counter() + budget
        lines = nbytes = 0
        while True:
            with open(path, encoding="utf-8") as f:
                k = 0
                for line in f:
                    nbytes += len(line)
                    k += 1
                    if k == CHECK_EVERY:
                        lines += k
                        k = 0
                        if perf_counter() >= deadline:
                            return lines, nbytes
                lines += k
            if perf_counter() >= deadline:
                return lines, nbytes

    return common.measure(run, args)


def async_lines(args, open_cm, loop="asyncio", binary=False, **extra):
    """One task: `async with open_cm(path) as f: async for line in f`, to the deadline."""
    path = args.path

    async def run(budget):
        deadline = perf_counter() + budget
        lines = nbytes = 0
        while True:
            async with open_cm(path) as f:
                k = 0
                async for line in f:
                    nbytes += len(line)
                    k += 1
                    if k == CHECK_EVERY:
                        lines += k
                        k = 0
                        if perf_counter() >= deadline:
                            return lines, nbytes
                lines += k
            if perf_counter() >= deadline:
                return lines, nbytes

    async def check():
        with open(path, "rb") if binary else open(path, encoding="utf-8") as g:
            want = [g.readline() for _ in range(3000)]
        got = []
        async with open_cm(path) as f:
            async for line in f:
                got.append(line)
                if len(got) == len(want):
                    break
        assert got == want
    return common.measure_async(run, args, loop, setup=check, **extra)


def linuxaio_open():
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

        def open_cm(p):
            return aopen(p, encoding="utf-8")
        return async_lines(args, open_cm, loop,
                           note=f"async with linuxaio.open(path) as f: async for line in f, under {loop}")
    return contender


for _loop in common.LOOPS:
    CONTENDERS.add(f"linuxaio-{_loop}")(_linuxaio(_loop))


@CONTENDERS.add("linuxaio-rb")
def linuxaio_binary(args):
    """The same in binary mode under asyncio: lines as bytes, no decoding."""
    aopen = linuxaio_open()

    def open_cm(p):
        return aopen(p, "rb")
    return async_lines(args, open_cm, binary=True,
                       note="async with linuxaio.open(path, 'rb') as f: async for line in f, under asyncio")


@CONTENDERS.add("aiofiles")
def aiofiles_contender(args):
    """async with aiofiles.open(path) as f: async for line in f -- a hop to the
    default executor per line."""
    aiofiles = common.need("aiofiles")

    def open_cm(p):
        return aiofiles.open(p, encoding="utf-8")
    return async_lines(args, open_cm,
                       note="async with aiofiles.open(path) as f: async for line in f; default executor")


@CONTENDERS.add("anyio")
def anyio_contender(args):
    """async for line in anyio.open_file(path) under asyncio: a worker-thread hop per line."""
    anyio = common.need("anyio")

    @contextlib.asynccontextmanager
    async def open_cm(p):
        async with await anyio.open_file(p, encoding="utf-8") as f:
            yield f
    return async_lines(args, open_cm,
                       note="async with await anyio.open_file(path) as f: async for line in f, under asyncio")


def main():
    p = common.parser(__doc__.splitlines()[0], depth=1)
    p.add_argument("--size", default="10M", help="size of the text file made under --dir (default 10M)")
    p.add_argument("--file", help="read this UTF-8 text file instead of making one")
    args = p.parse_args()

    def data():
        args.path = args.file or str(lines_file(common.parse_size(args.size), args.dir))
        return [args.path]
    common.main(CONTENDERS, args, data)


if __name__ == "__main__":
    main()
