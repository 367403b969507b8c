"""The await's fixed costs cut (issue 12, second pass; README "Inline-first
awaits"): the running asyncio loop is remembered rather than asked for on
each call (asyncio's lookup costs a getpid(2)), and under trio the run is
found by its token and a call done inline is settled without calling its
waiter.

Each behaviour these change is checked here: the loop found is always the
one running (a second loop, a loop in another thread, a forked child), the
trio run found is the current one (runs in turn, in two threads), and every
trio call is still a checkpoint.  Results are compared with the synchronous
os calls.
"""
import asyncio
import os
import threading

import pytest

import linuxaio
from linuxaio import _engine, _loop
from linuxaio import os as aos

from aio_helpers import run_python

trio = pytest.importorskip("trio")

@pytest.fixture
def cached(tmp_path):
    data = os.urandom(64 * 1024)
    p = tmp_path / "cached"
    p.write_bytes(data)
    with open(p, "rb") as f:
        assert f.read() == data
    os.symlink(p, tmp_path / "link")
    return p, data


def inline_count():
    return _engine._inline_stats()[0]


# ------------------------------------------------------------- results

def test_twins_match_os_under_asyncio(cached, tmp_path):
    p, data = cached

    async def main():
        fd = os.open(p, os.O_RDONLY)
        try:
            assert await aos.pread(fd, 4096, 8192) == os.pread(fd, 4096, 8192)
            buf = bytearray(100)
            assert await aos.preadinto(fd, buf, 10) == 100 and bytes(buf) == data[10:110]
            assert await aos.stat(p) == os.stat(p)
            assert await aos.lstat(tmp_path / "link") == os.lstat(tmp_path / "link")
            assert await aos.stat(tmp_path / "link", follow_symlinks=False) == \
                os.lstat(tmp_path / "link")
            assert await aos.fstat(fd) == os.fstat(fd)
            assert await aos.readlink(tmp_path / "link") == os.readlink(tmp_path / "link")
            assert await aos.realpath(tmp_path / "link") == os.path.realpath(tmp_path / "link")
            assert sorted(await aos.listdir(tmp_path)) == sorted(os.listdir(tmp_path))
            assert (await aos.statvfs(tmp_path)).f_bsize == os.statvfs(tmp_path).f_bsize
            assert (await aos.fstatvfs(fd)).f_bsize == os.fstatvfs(fd).f_bsize
        finally:
            os.close(fd)
    asyncio.run(main())


def test_errors_match_os(cached, tmp_path):
    p, _ = cached
    missing = str(tmp_path / "missing")

    async def main():
        with pytest.raises(FileNotFoundError) as e:
            await aos.stat(missing)
        assert e.value.errno == 2 and e.value.filename == missing
        with pytest.raises(TypeError):
            await aos.pread("not an fd", 1, 0)    # refused at submission, nothing queued
        with pytest.raises(TypeError):
            await aos.stat(p, bogus=1)
        with pytest.raises(ValueError):
            await aos.stat(3, dir_fd=3)           # os's own check
        with pytest.raises(OSError) as e:
            await aos.fstat(987654)
        assert e.value.errno == 9
        assert linuxaio.npending() == 0
    asyncio.run(main())


def test_twins_under_create_task_gather_wait_for_and_asyncio_run(cached):
    p, data = cached
    assert asyncio.run(aos.stat(p)) == os.stat(p)   # called before any loop runs

    async def main():
        fd = os.open(p, os.O_RDONLY)
        try:
            t = asyncio.create_task(aos.pread(fd, 10, 5))
            assert await t == data[5:15]
            assert await asyncio.gather(aos.pread(fd, 3, 0), aos.fstat(fd)) == \
                [data[:3], os.fstat(fd)]
            assert await asyncio.wait_for(aos.pread(fd, 4, 1), 10) == data[1:5]
        finally:
            os.close(fd)
    asyncio.run(main())


# ------------------------------------------------------------- the loop found

def test_each_loop_in_turn_is_the_one_bound(cached):
    p, data = cached
    loops = []

    async def main():
        fd = os.open(p, os.O_RDONLY)
        try:
            for inline in (True, False):
                linuxaio.inline(inline)
                r = _loop.run(_engine.pread, fd, 8, 0)
                assert r.get_loop() is asyncio.get_running_loop()
                assert await r == data[:8]
        finally:
            linuxaio.inline(True)
            os.close(fd)
        loops.append(asyncio.get_running_loop())
    asyncio.run(main())
    asyncio.run(main())                           # a new loop, same thread
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(main())
        loop.run_until_complete(main())           # the same loop run again
    finally:
        loop.close()
    assert len({id(x) for x in loops[:3]}) == 3


def test_loops_in_two_threads_each_get_their_own(cached):
    p, data = cached
    errors = []

    async def worker():
        fd = os.open(p, os.O_RDONLY)
        try:
            for i in range(2000):
                r = _loop.run(_engine.pread, fd, 16, i)
                assert r.get_loop() is asyncio.get_running_loop()
                assert await r == data[i:i + 16]
                if i % 50 == 0:
                    await asyncio.sleep(0)
        finally:
            os.close(fd)

    def thread():
        try:
            asyncio.run(worker())
        except BaseException as e:   # noqa: B902 (reported below)
            errors.append(e)
    ts = [threading.Thread(target=thread) for _ in range(2)]
    for t in ts:
        t.start()
    asyncio.run(worker())
    for t in ts:
        t.join(60)
    assert not errors


def test_a_forked_child_has_no_running_loop(tmp_path):
    """asyncio says a loop inherited through fork is not running in the
    child; the remembered loop must not say otherwise."""
    code = """
import asyncio, os, sys
from linuxaio import os as aos
async def main():
    await aos.stat("/")                  # the loop is found and remembered
    pid = os.fork()
    if pid == 0:
        try:
            aw = aos.stat("/")
            aw.send(None) if hasattr(aw, "send") else None
        except RuntimeError as e:
            os._exit(0 if "no running" in str(e) else 3)
        except BaseException:
            os._exit(4)
        os._exit(5)
    _, status = os.waitpid(pid, 0)
    print("child", os.waitstatus_to_exitcode(status))
asyncio.run(main())
"""
    proc, _ = run_python(code, timeout=60)
    assert "child 0" in proc.stdout, (proc.stdout, proc.stderr)


# ------------------------------------------------------------- trio

def test_trio_results_match_os_and_go_inline(cached):
    p, data = cached

    async def main():
        fd = os.open(p, os.O_RDONLY)
        try:
            before = inline_count()
            for i in range(50):
                assert await aos.pread(fd, 4096, i * 512) == data[i * 512:i * 512 + 4096]
            assert inline_count() >= before + 25
            assert await aos.stat(p) == os.stat(p)
            with pytest.raises(FileNotFoundError):
                await aos.stat(str(p) + ".missing")
        finally:
            os.close(fd)
    trio.run(main)


def test_every_trio_call_is_still_a_checkpoint(cached):
    p, _ = cached

    async def main():
        fd = os.open(p, os.O_RDONLY)
        try:
            # a cancellation point: a cancelled scope stops the call
            with trio.CancelScope() as cs:
                cs.cancel()
                await aos.pread(fd, 10, 0)
                raise AssertionError("not reached: the call is a cancel point")
            assert cs.cancelled_caught
            # a schedule point: another task runs between calls done inline
            ticks = []

            async def ticker():
                while True:
                    ticks.append(1)
                    await trio.lowlevel.checkpoint()
            async with trio.open_nursery() as n:
                n.start_soon(ticker)
                await trio.lowlevel.checkpoint()
                before = len(ticks)
                for _ in range(20):
                    await aos.pread(fd, 10, 0)
                assert len(ticks) - before >= 19
                n.cancel_scope.cancel()
        finally:
            os.close(fd)
    trio.run(main)


def test_trio_runs_in_turn_and_in_two_threads(cached):
    """The run remembered (its token) is always the current one."""
    p, data = cached
    errors = []

    async def main():
        fd = os.open(p, os.O_RDONLY)
        try:
            for i in range(300):
                assert await aos.pread(fd, 8, i) == data[i:i + 8]
        finally:
            os.close(fd)

    def thread():
        try:
            trio.run(main)
        except BaseException as e:   # noqa: B902
            errors.append(e)
    trio.run(main)
    trio.run(main)
    ts = [threading.Thread(target=thread) for _ in range(2)]
    for t in ts:
        t.start()
    trio.run(main)
    for t in ts:
        t.join(60)
    assert not errors
