"""Quick awaits under asyncio and uvloop (module.c, lx_await_quick_ok).

A quick request awaited one at a time (a stat of a cached inode) is not
waited for through the eventfd: the task gives the loop one turn and then
takes its own result from the result queue.  These tests pin down what that
path must keep: the same results as os, a turn for the loop on every await,
a cancellation during that turn that cancels (and leaks nothing), and an
eventfd that is readable exactly while results wait.
"""
import asyncio
import os
import select

import pytest

import linuxaio
import linuxaio.os as aos

from async_helpers import fd_count
from aio_helpers import idle_workers_after_quick_requests, wait_until

# Requests that reach the engine: a cached call would complete inline
# (tests/test_inline.py covers that path).
pytestmark = pytest.mark.usefixtures("engine_only")


LOOPS = ["asyncio", "uvloop"]


def run(name, coro_fn):
    if name == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        return uvloop.run(coro_fn())
    return asyncio.run(coro_fn())


def readable(fd):
    return bool(select.select([fd], [], [], 0)[0])


@pytest.fixture
def tree(tmp_path):
    paths = []
    for i in range(300):
        p = tmp_path / f"f{i:03d}"
        p.write_bytes(b"x" * (i * 13 % 4000))
        paths.append(str(p))
    return tmp_path, paths


@pytest.mark.parametrize("name", LOOPS)
def test_sequential_stats_match_os_and_each_yields(name, tree):
    _, paths = tree

    async def main():
        loop = asyncio.get_running_loop()
        turns = 0
        for _ in range(3):
            for p in paths:
                ran = []
                loop.call_soon(ran.append, 1)
                st = await aos.stat(p)
                turns += bool(ran)
                ref = os.stat(p)
                assert (st.st_ino, st.st_size, st.st_mode, st.st_mtime_ns) == \
                       (ref.st_ino, ref.st_size, ref.st_mode, ref.st_mtime_ns)
        assert turns == 3 * len(paths), "an await completed without a turn of the loop"
        assert linuxaio.nreqs() == 0

    run(name, main)


@pytest.mark.parametrize("name", LOOPS)
def test_sequential_errors_are_oserrors(name, tmp_path):
    async def main():
        for i in range(200):
            missing = str(tmp_path / f"missing{i}")
            with pytest.raises(FileNotFoundError) as info:
                await aos.stat(missing)
            assert info.value.filename == missing
        assert linuxaio.nreqs() == 0

    run(name, main)


@pytest.mark.parametrize("name", LOOPS)
def test_poll_fd_not_left_readable(name, tree):
    """Quick results skip the eventfd; none may leave it signalled (the loop
    would spin on a readable fd) or leave a result unsignalled."""
    _, paths = tree
    fd = linuxaio.poll_fileno()

    async def main():
        for p in paths:
            await aos.stat(p)
            await aos.lstat(p)
        assert linuxaio.nreqs() == 0
        await asyncio.sleep(0)
        assert not readable(fd)

    run(name, main)
    assert not readable(fd)


@pytest.mark.parametrize("name", LOOPS)
def test_cancel_during_the_turn(name, tree):
    """Cancelled right after its first step (while the loop has its turn),
    an open either never runs or has its fd closed; stats are dropped; every
    request is accounted for without anybody calling poll_cb."""
    root, paths = tree

    async def main():
        before = fd_count(root)
        outcomes = {"cancelled": 0, "done": 0}
        for i, p in enumerate(paths):
            call = aos.open(p, os.O_RDONLY) if i % 2 else aos.stat(p)
            task = asyncio.ensure_future(call)
            await asyncio.sleep(0)          # the task ran its first step
            task.cancel()
            try:
                res = await task
            except asyncio.CancelledError:
                outcomes["cancelled"] += 1
            else:                           # it had finished already
                outcomes["done"] += 1
                if i % 2:
                    os.close(res)
        for _ in range(1000):
            if linuxaio.nreqs() == 0:
                break
            await asyncio.sleep(0.001)
        assert linuxaio.nreqs() == 0, "a cancelled request was stranded"
        assert fd_count(root) == before, "a cancelled open leaked its fd"
        assert outcomes["cancelled"] > 0
        await asyncio.sleep(0)
        assert not readable(linuxaio.poll_fileno())

    run(name, main)


@pytest.mark.parametrize("name", LOOPS)
def test_quick_and_slow_awaits_mixed(name, tree):
    """A slow request among quick ones (aio_busy holds a worker) neither
    hangs the quick path nor gets its result lost."""
    _, paths = tree

    async def main():
        loop = asyncio.get_running_loop()
        slow = loop.create_task(aos_busy(0.05))
        for p in paths:
            assert (await aos.stat(p)).st_ino == os.stat(p).st_ino
        assert await slow == 0
        assert linuxaio.nreqs() == 0

    run(name, main)


async def aos_busy(seconds):
    """aio_busy awaited through the loop (a future fed by its callback)."""
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    linuxaio.aio_busy(seconds, lambda r: fut.done() or fut.set_result(r))
    return await fut


@pytest.mark.parametrize("name", LOOPS)
def test_concurrent_tasks_take_the_loop_path(name, tree):
    """64 tasks at once: results still match os whichever path each took."""
    _, paths = tree

    async def one(p):
        st = await aos.stat(p)
        assert st.st_size == os.stat(p).st_size

    async def main():
        for _ in range(3):
            await asyncio.gather(*(one(p) for p in paths))
        assert linuxaio.nreqs() == 0

    run(name, main)


# ---- trio: the same quick path, driven from _loop._trio_wait ----

def test_trio_sequential_stats_and_errors(tree):
    trio = pytest.importorskip("trio")
    root, paths = tree
    missing = [str(root / f"missing{i}") for i in range(100)]

    async def main():
        for _ in range(3):
            for p in paths:
                st = await aos.stat(p)
                ref = os.stat(p)
                assert (st.st_ino, st.st_size, st.st_mtime_ns) == \
                       (ref.st_ino, ref.st_size, ref.st_mtime_ns)
        for m in missing:
            with pytest.raises(FileNotFoundError) as info:
                await aos.lstat(m)
            assert info.value.filename == m
        assert linuxaio.nreqs() == 0

    trio.run(main)
    assert not readable(linuxaio.poll_fileno())


def test_trio_cancel_during_the_turn(tree):
    """A cancel scope cancelled while the task is at its checkpoint: the
    open either never ran or has its fd closed; nothing is stranded."""
    trio = pytest.importorskip("trio")
    root, paths = tree

    async def main():
        before = fd_count(root)
        cancelled = 0
        for p in paths:
            with trio.CancelScope() as cs:
                async def canceller():
                    cs.cancel()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(canceller)
                    fd = await aos.open(p, os.O_RDONLY)
                    os.close(fd)
            cancelled += cs.cancelled_caught
        for _ in range(1000):
            if linuxaio.nreqs() == 0:
                break
            await trio.sleep(0.001)
        assert linuxaio.nreqs() == 0, "a cancelled request was stranded"
        assert fd_count(root) == before, "a cancelled open leaked its fd"
        assert cancelled > 0

    trio.run(main)


def test_drain_does_not_resume_a_task_awaiting_since_this_turn(tree):
    """A task that awaits in the same turn of the loop as a drain that gets
    its result must still see the callbacks it scheduled before awaiting run
    first (the drain must not wake it inline).  Staged: a result already
    waits (so this turn's poll runs the drain after the task's step)."""
    _, paths = tree

    async def main():
        loop = asyncio.get_running_loop()
        await aos.stat(paths[0])            # the loop watches the engine
        misses = 0
        for p in paths[:100]:
            linuxaio.aio_nop(None)
            while linuxaio.npending() == 0:
                pass                        # its result waits: the fd is readable
            await asyncio.sleep(0)          # this step runs before the drain
            ran = []
            loop.call_soon(ran.append, 1)
            await aos.stat(p)
            misses += not ran
        assert misses == 0, f"{misses} awaits returned before the loop's queued callbacks ran"
        for _ in range(100):
            if not linuxaio.nreqs():
                break
            await asyncio.sleep(0.001)

    asyncio.run(main())


# ---- found in review (session 2): each failed before its fix ----

def test_future_cancel_during_the_turn_leaves_nothing_stranded(tmp_path):
    """Request.cancel() (not the task's) while its awaiter is at the quick
    turn: the result must still be signalled and drained (an opened fd
    closed), not left unsignalled in the result queue."""
    p = tmp_path / "f"
    p.write_bytes(b"x")
    path = str(p)
    from linuxaio import _engine

    async def main():
        loop = asyncio.get_running_loop()
        for _ in range(50):                 # open is quick now; the loop watches the engine
            os.close(await aos.open(path, os.O_RDONLY))
        before = fd_count(tmp_path)
        stranded = []
        for i in range(20):
            holder = []
            os.close(await aos.open(path, os.O_RDONLY))   # a worker spins now

            async def waiter():
                r = _engine.open(path, os.O_RDONLY, 0, None, loop)   # what aos.open awaits
                holder.append(r)
                return await r

            t = loop.create_task(waiter())
            await asyncio.sleep(0)          # the waiter ran its first step
            holder[0].cancel()
            try:
                os.close(await t)
            except asyncio.CancelledError:
                pass
            for _ in range(200):
                if not linuxaio.nreqs():
                    break
                await asyncio.sleep(0.001)
            if linuxaio.nreqs():
                stranded.append(i)
                linuxaio.poll_cb()
        assert not stranded, f"rounds with a stranded result: {stranded}"
        assert fd_count(tmp_path) == before

    asyncio.run(main())


def test_closed_awaiter_at_the_turn_leaves_nothing_stranded(tmp_path):
    """The awaiting coroutine closed at the quick turn (a pending task
    destroyed): the result must be signalled for a drain to take."""
    path = str(tmp_path)
    from linuxaio import _engine
    loop = asyncio.new_event_loop()

    async def warm():
        for _ in range(50):
            await aos.stat(path)

    async def waiter():
        return await _engine.stat(path, None, 0, loop)

    try:
        for _ in range(50):
            loop.run_until_complete(warm())     # ends with a worker spinning
            c = waiter()
            if c.send(None) is None:            # the quick path's bare yield
                break
            c.close()
            linuxaio.flush()
        else:
            pytest.skip("the quick path was never taken (no worker spinning in time)")
        c.close()
        for _ in range(500):
            if linuxaio.npending() or not linuxaio.nreqs():
                break
            import time
            time.sleep(0.001)
        assert linuxaio.nreqs() == 0 or readable(linuxaio.poll_fileno()), \
            "a result waits but the poll fd is not readable"
    finally:
        linuxaio.flush()
        loop.close()


def test_other_threads_drains_do_not_break_the_turn_rule(tmp_path):
    """The "same turn" stamps are per thread: drains run by another
    thread's loop must not let this loop resume a task inline before a
    callback it scheduled ahead of its await."""
    import threading
    from linuxaio import _engine
    p = str(tmp_path)
    loop_b = asyncio.new_event_loop()
    tb = threading.Thread(target=loop_b.run_forever, daemon=True)
    tb.start()

    async def b_two_awaits():
        await aos.stat(p)
        await aos.stat(p)

    def park_b():
        """Hold B's loop in a callback, where it cannot drain, until the
        returned event is set: a result this thread waits for is then
        not taken away by B's drain (the wait used to spin for ever)."""
        parked, go = threading.Event(), threading.Event()
        loop_b.call_soon_threadsafe(lambda: (parked.set(), go.wait(20)))
        assert parked.wait(20)
        return go

    async def main():
        loop = asyncio.get_running_loop()
        await aos.stat(p)
        rfd, wfd = os.pipe()
        rfd2, wfd2 = os.pipe()
        blocker = _engine.read(rfd2, 1, loop)   # keeps nreqs > 1: no quick awaits
        misses = 0
        try:
            for _ in range(30):
                go = park_b()
                linuxaio.aio_nop(None)
                wait_until(lambda: linuxaio.npending(), what="the nop's result")
                await asyncio.sleep(0)          # a result waits: this turn runs A's drain,
                go.set()                        # after this step
                ran = []
                loop.call_soon(ran.append, 1)
                r = _engine.read(rfd, 1, loop)  # what aos.read(rfd, 1) awaits
                asyncio.run_coroutine_threadsafe(b_two_awaits(), loop_b).result(20)
                go = park_b()
                os.write(wfd, b"x")
                wait_until(lambda: linuxaio.npending(), what="r's result")
                go.set()                        # B's loop may take it now, or A's
                assert await r == b"x"
                misses += not ran
        finally:
            os.write(wfd2, b"y")
            assert await blocker == b"y"
            for fd in (rfd, wfd, rfd2, wfd2):
                os.close(fd)
        assert misses == 0, f"{misses}/30 awaits returned before the callback queued ahead of them"

    try:
        asyncio.run(main())
    finally:
        loop_b.call_soon_threadsafe(loop_b.stop)
        tb.join()
        loop_b.close()


def test_quick_request_behind_a_blocked_worker_runs_soon():
    """One worker blocked (a pipe read), the other asleep since nothing was
    in flight: a quick request must not wait for the sleeper's idle timeout
    (the standby, not a wake-up, was trusted to catch it).  The idle timeout
    is an hour here, so such a wait would outlast any machine's slowness:
    the request running at all is the test, with no bound on how soon."""
    import time
    linuxaio.idle_timeout(3600)                 # before the workers fall asleep
    idle_workers_after_quick_requests(3)
    assert linuxaio.nthreads() >= 3
    rfd, wfd = os.pipe()
    try:
        got = []
        from linuxaio import _engine
        _engine.read(rfd, 1, got.append)        # read(2) of an empty pipe: blocks a worker
        time.sleep(0.01)
        done = []
        linuxaio.aio_nop(done.append)
        wait_until(lambda: linuxaio.poll_cb() or done, 20, "the quick request behind a blocked worker")
        assert done == [0]
    finally:
        os.write(wfd, b"z")
        linuxaio.flush()
        os.close(rfd)
        os.close(wfd)


def test_a_burst_of_requests_that_turn_out_slow_all_start():
    """Requests look quick and one worker spins; the others sleep since
    nothing was in flight (so they are not the 1 ms standby).  A burst of
    four slow ones must not queue behind the spinner: every one starts on a
    worker of its own.  Slow for as long as the test wants (reads of empty
    pipes), and the sleepers' idle timeout an hour: one left queued would
    stay queued, however fast or slow the machine."""
    from linuxaio import _engine
    linuxaio.idle_timeout(3600)                 # before the workers fall asleep
    idle_workers_after_quick_requests(4)
    assert linuxaio.nthreads() == 4
    linuxaio.aio_nop(None)                      # one wakes and runs it...
    while not linuxaio.npending():
        pass
    pipes = [os.pipe() for _ in range(4)]       # ...and spins for more now
    try:
        for r, _ in pipes:
            _engine.read(r, 1, None)
        wait_until(lambda: linuxaio.nready() == 0, 20, "all 4 slow requests to start")
    finally:
        for _, w in pipes:
            os.write(w, b"z")
        linuxaio.flush()
        for r, w in pipes:
            os.close(r)
            os.close(w)


def test_reinit_cancels_tasks_awaiting_dropped_requests():
    """reinit() drops what is in flight; a task awaiting one of those
    requests (or a batch) gets CancelledError instead of waiting for ever."""
    async def main():
        await aos.stat("/")                  # the loop watches the engine
        linuxaio.max_parallel(0)             # nothing runs: everything stays queued
        one = asyncio.ensure_future(aos.stat("/"))
        batch = asyncio.ensure_future(aos.stat_many(["/", "/tmp"]))
        await asyncio.sleep(0.01)
        assert not one.done() and not batch.done()
        linuxaio.reinit()
        linuxaio.min_parallel(4)             # raise the limit again
        for t in (one, batch):
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(t, 5)
        assert linuxaio.nreqs() == 0
        assert (await aos.stat("/")).st_ino == os.stat("/").st_ino   # a fresh engine works

    asyncio.run(main())


def test_a_standby_that_takes_a_blocking_request_leaves_none_stranded():
    """One worker blocked, one asleep as the armed standby, two requests
    queued that dispatch() left to it: the first blocks the standby too (a
    read of an empty pipe).  The second must still run, on a new worker
    (the thread limit allows it), not wait for ever behind both."""
    import time
    from linuxaio import _engine
    for _ in range(200):                        # requests look quick to dispatch()
        linuxaio.aio_nop(None)
        linuxaio.flush()
    linuxaio.max_parallel(2)                    # 2 threads while the scene is set
    wait_until(lambda: linuxaio.nthreads() <= 2, what="extra workers gone")
    pipes = [os.pipe(), os.pipe()]
    try:
        _engine.read(pipes[0][0], 1, None)      # blocks a worker
        wait_until(lambda: linuxaio.nready() == 0, what="the first read started")
        ran = []
        linuxaio.aio_nop(ran.append)            # another worker runs it, then sleeps armed
        wait_until(lambda: linuxaio.poll_cb() or ran, what="the nop")
        assert linuxaio.nthreads() == 2
        linuxaio.min_parallel(4)                # room for 2 more threads now
        time.sleep(0.01)                        # the other worker asleep, armed
        _engine.read(pipes[1][0], 1, None, pri=1)   # the standby takes this one first
        done = []
        linuxaio.aio_nop(done.append)
        # both workers stay blocked until the test ends: a request left
        # behind them would wait for ever, so running at all is the test
        wait_until(lambda: linuxaio.poll_cb() or done, 20, "a request queued behind two blocked workers")
        assert done == [0]
    finally:
        for _, w in pipes:
            os.write(w, b"z")
        linuxaio.flush()
        for r, w in pipes:
            os.close(r)
            os.close(w)
