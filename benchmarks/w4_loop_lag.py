"""W4: event-loop lag under W1: a 1 ms ticker on the same loop as 64 tasks doing W1.

The ticker task loops on `t = now; await sleep(0.001); lag = now - t - 0.001`
(asyncio.sleep, or trio.sleep under trio) for the whole timed run, next to the
W1 load of an awaitable contender of w1_random_read.py (64 tasks, each awaiting
one 4 KiB read at a time, bytes back).  The result line has the W1 throughput
reached (ops, iops, mbps) and the ticker's lag: lag_p50_ms, lag_p99_ms,
lag_max_ms over `ticks` ticks.  The idle* contenders run the ticker alone (the
loop's own timer lag; no reads, iops 0); `plain` is the plain W1 loop, with
no event loop and no ticker, as the throughput reference.

python benchmarks/w4_loop_lag.py --contender NAME [--size 1G]   (--list: the names)
"""

import os
from time import perf_counter

import common
import w1_random_read as w1

TICK = 0.001
CONTENDERS = common.Contenders()
CONTENDERS.add("plain")(w1.plain)


async def ticker(budget, lags):
    """Sleep TICK in a loop for `budget` seconds; record each wake-up's lateness."""
    sleep = common.sleeper()
    deadline = perf_counter() + budget
    while (t := perf_counter()) < deadline:
        await sleep(TICK)
        lags.append(perf_counter() - t - TICK)


def lag_stats(lags) -> dict:
    if not lags:
        return {"ticks": 0}
    lags = sorted(lags)
    n = len(lags)

    def ms(q):
        return round(1e3 * lags[min(n - 1, int(q * n))], 3)
    return {"ticks": n, "lag_p50_ms": ms(0.50), "lag_p99_ms": ms(0.99),
            "lag_max_ms": round(1e3 * lags[-1], 3)}


def with_ticker(load):
    """run(budget) -> (ops, nbytes, lag stats): `load` (a W1 run(budget), or None
    for the idle loop) and the ticker, side by side on the running loop."""
    async def run(budget):
        lags, got = [], [(0, 0)]

        async def do_load():
            got[0] = await load(budget)

        async def do_tick():
            await ticker(budget, lags)
        await common.run_tasks([do_load, do_tick] if load else [do_tick])
        ops, nbytes = got[0]
        return ops, nbytes, lag_stats(lags)
    return run


def idle(loop):
    def contender(args):
        return common.measure_async(with_ticker(None), args, loop,
                                    note=f"the 1 ms ticker alone on an idle {loop} loop")
    return contender


CONTENDERS.add("idle")(idle("asyncio"))
CONTENDERS.add("idle-uvloop")(idle("uvloop"))
CONTENDERS.add("idle-trio")(idle("trio"))


def under_load(name):
    """The ticker next to W1's awaitable contender `name` (same reader, same tasks)."""
    def contender(args):
        loop, factory = w1.ASYNC_READERS[name]
        fd = os.open(args.file, os.O_RDONLY)
        offsets = common.random_offsets(os.fstat(fd).st_size, w1.BS)

        async def main():
            async with factory(args) as (readers, note):
                await w1.check_readers(fd, offsets, readers)
                run = with_ticker(w1.w1_load(fd, offsets, readers))
                return await common.timed(run, args, loop=loop, note=f"ticker + W1 via {note}")
        return common.run_loop(main, loop)
    return contender


for _name in ("linuxaio-asyncio", "linuxaio-uvloop", "linuxaio-trio",
              "aiofiles", "aiofile", "pyaio"):
    CONTENDERS.add(_name)(under_load(_name))


@CONTENDERS.add("linuxaio-batch")
def linuxaio_batch(args):
    """The ticker next to W1's linuxaio-batch (64 tasks x pread_many of 64 reads)."""
    aio = common.import_linuxaio_async()
    fd = os.open(args.file, os.O_RDONLY)
    offsets = common.random_offsets(os.fstat(fd).st_size, w1.BS)
    run = with_ticker(w1.w1_batch_load(fd, offsets, args.depth, aio.os.pread_many))
    return common.measure_async(
        run, args, note=f"ticker + W1 via {args.depth} tasks x await linuxaio.os.pread_many(64 reads)")


if __name__ == "__main__":
    p = common.parser(__doc__.splitlines()[0], depth=64)
    p.add_argument("--file", help="file to read (default: a --size file in --dir)")
    p.add_argument("--size", default="1G", help="size of the default file")
    args = p.parse_args()

    def data():
        args.file = args.file or str(common.big_file(common.parse_size(args.size), args.dir))
        return [args.file]
    common.main(CONTENDERS, args, data)
