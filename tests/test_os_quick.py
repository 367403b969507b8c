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
