"""Per-call cost of a sequential await against the plain call it wraps.

    python benchmarks/inline_calls.py [--n 20000] [--loops asyncio,uvloop,trio] [--bound]

For each call (a 4 KiB cached pread, stat, fstat, open+close, slurp of a
4 KiB file, and a 64 KiB pread) it times, in one process and one sitting:
the plain synchronous call (os.pread, os.stat, ..., open().read(), and
os.open/os.read/os.close as W2r's plain loop), and
`await linuxaio.os.X(...)` one at a time under each loop with inline-first
awaits on (linuxaio.inline(True), the default) and off.  It prints
microseconds per call (the best of several rounds) and the ratio plain/await (1.0: an await as cheap as
the call), then under trio the bound of a sequential await (`await
trio.lowlevel.checkpoint()` alone, and followed by the plain call: an await
may cost that + 0.5 us), then the cost of a 4 KiB..1 MiB cached read
inline, which sets the inline cap (src/engine/inline.c).  Figures on a shared machine are noisy:
compare the ratios of one run.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def setup(d: Path):
    big = d / "big"
    big.write_bytes(os.urandom(1 << 20))
    small = d / "small"
    small.write_bytes(os.urandom(4096))
    common.warm([big, small])
    return big, small


def calls(aio, big: Path, small: Path, fd: int):
    aos = aio.os
    sbig, ssmall = str(big), str(small)

    async def aopen_close():
        os.close(await aos.open(sbig, os.O_RDONLY))

    def open_close():
        os.close(os.open(sbig, os.O_RDONLY))

    def slurp():
        with open(ssmall, "rb") as f:
            return f.read()

    def slurp_os():   # W2r's plain loop: no file object, about half of open().read()
        fd = os.open(ssmall, os.O_RDONLY)
        try:
            return os.read(fd, 16384)
        finally:
            os.close(fd)
    return [
        ("pread 4K", lambda: os.pread(fd, 4096, 8192), lambda: aos.pread(fd, 4096, 8192)),
        ("stat", lambda: os.stat(sbig), lambda: aos.stat(sbig)),
        ("fstat", lambda: os.fstat(fd), lambda: aos.fstat(fd)),
        ("open+close", open_close, aopen_close),
        ("slurp 4K", slurp, lambda: aio.slurp(ssmall)),
        ("slurp 4K os.*", slurp_os, lambda: aio.slurp(ssmall)),
        ("pread 64K", lambda: os.pread(fd, 65536, 0), lambda: aos.pread(fd, 65536, 0)),
    ]


CLOCK = time.perf_counter
ROUNDS = 9   # the best of several short rounds: a shared machine deschedules us now and then


def time_plain(fn, n):
    for _ in range(n // 10):
        fn()
    best = float("inf")
    k = max(1, n // ROUNDS)
    for _ in range(ROUNDS):
        t0 = CLOCK()
        for _ in range(k):
            fn()
        best = min(best, (CLOCK() - t0) / k * 1e6)
    return best


def time_await(aio, afn, n, loop):
    async def main():
        for _ in range(n // 10):
            await afn()
        best = float("inf")
        k = max(1, n // ROUNDS)
        for _ in range(ROUNDS):
            t0 = CLOCK()
            for _ in range(k):
                await afn()
            best = min(best, (CLOCK() - t0) / k * 1e6)
        return best
    return common.run_loop(main, loop)


def time_checkpoint(plain, n):
    """Under trio: `await trio.lowlevel.checkpoint()` alone (plain None), or
    followed by the plain call: the bound of a sequential trio await is one
    checkpoint + the plain call + 0.5 us (issue 12)."""
    import trio
    checkpoint = trio.lowlevel.checkpoint

    async def main():
        best = float("inf")
        k = max(1, n // ROUNDS)
        for _ in range(ROUNDS):
            t0 = CLOCK()
            if plain is None:
                for _ in range(k):
                    await checkpoint()
            else:
                for _ in range(k):
                    await checkpoint()
                    plain()
            best = min(best, (CLOCK() - t0) / k * 1e6)
        return best
    return trio.run(main)


def trio_bound(aio, rows, n):
    """The trio bound, each row's figures taken back to back."""
    print("\ntrio: a sequential await against one checkpoint + the plain call (+ 0.5 us allowed)")
    print(f"  checkpoint alone {time_checkpoint(None, n):7.2f} us")
    print(f"  {'call':12} {'plain':>7} {'cp+plain':>9} {'trio await':>11} {'over cp+plain':>14}")
    for name, plain, afn in rows:
        tp = time_plain(plain, n)
        tcp = time_checkpoint(plain, n)
        ta = time_await(aio, afn, n, "trio")
        print(f"  {name:12} {tp:7.2f} {tcp:9.2f} {ta:11.2f} {ta - tcp:+11.2f} us"
              f"{'  (within)' if ta <= tcp + 0.5 else ''}", flush=True)


def read_sizes(fd):
    """Microseconds per cached pread of each size: what an inline read holds the loop for."""
    out = []
    for size in (4096, 16384, 65536, 262144, 1 << 20):
        n = max(200, 2_000_000 // size)
        out.append((size, time_plain(lambda: os.pread(fd, size, 0), n)))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--loops", default="asyncio,uvloop,trio")
    ap.add_argument("--bound", action="store_true",
                    help="only the trio bound: checkpoint, checkpoint + the plain call, the await")
    ap.add_argument("--cpu", action="store_true",
                    help="time the process's CPU (all its threads) instead of the wall clock: "
                         "steadier on a loaded machine; an await through the engine then also "
                         "counts its worker's time")
    a = ap.parse_args()
    global CLOCK
    if a.cpu:
        CLOCK = time.process_time
    aio = common.import_linuxaio_async()
    loops = [x for x in a.loops.split(",") if x]
    with tempfile.TemporaryDirectory(dir=os.environ.get("LINUXAIO_BENCH_DIR")) as d:
        big, small = setup(Path(d))
        fd = os.open(big, os.O_RDONLY)
        if a.bound:
            trio_bound(aio, calls(aio, big, small, fd), a.n)
            os.close(fd)
            return
        cols = [f"{lp} {'on' if on else 'off'}" for lp in loops for on in (True, False)]
        print(f"{'call':12} {'plain us':>9} " + " ".join(f"{c:>17}" for c in cols))
        for name, plain, afn in calls(aio, big, small, fd):
            tp = time_plain(plain, a.n)
            cells = []
            for lp in loops:
                for on in (True, False):
                    aio.inline(on)
                    try:
                        ta = time_await(aio, afn, a.n if on else a.n // 4, lp)
                        cells.append(f"{ta:7.2f} us {tp / ta:5.2f}x")
                    except common.Skip:
                        cells.append(f"{'skipped':>17}")
            aio.inline(True)
            print(f"{name:12} {tp:9.2f} " + " ".join(f"{c:>17}" for c in cells), flush=True)
        if "trio" in loops:
            try:
                trio_bound(aio, calls(aio, big, small, fd), a.n)
            except common.Skip:
                pass
        print("\ncached pread, plain: size -> us per call")
        for size, us in read_sizes(fd):
            print(f"  {size // 1024:5d} KiB {us:8.2f} us")
        os.close(fd)


if __name__ == "__main__":
    main()
