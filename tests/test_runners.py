"""The hot os twins' C runners (src/engine/runner.c; issue 12, third pass)
and the running loop read without getpid(2) (future.c, 3.11).

linuxaio.os.pread, preadinto, fstat, stat, lstat and linuxaio.slurp are no
`async def` any more: called with their positional arguments alone under a
running asyncio loop, they submit at once and return the request, which is
the awaitable.  Everything a program may rely on is checked here: results
equal the os calls', errors carry errno and filename, bad arguments raise at
the call with nothing queued, the object returned works with await,
create_task, gather, wait_for, shield, anyio and trio, the functions still
look like coroutine functions (inspect, asyncio, signature, pickling), other
forms of call (keywords, no loop yet) are coroutines as before, and the loop
found is always the running one (uvloop, threads, runs in turn, fork).
"""
import asyncio
import collections.abc
import inspect
import os
import pickle
import threading

import pytest

import linuxaio
from linuxaio import _engine
from linuxaio import os as aos

from aio_helpers import run_python

RUNNERS = [(aos, "pread"), (aos, "preadinto"), (aos, "fstat"), (aos, "stat"), (aos, "lstat"),
           (linuxaio, "slurp")]


@pytest.fixture
def cached(tmp_path):
    data = os.urandom(16 * 1024)
    p = tmp_path / "cached"
    p.write_bytes(data)
    with open(p, "rb") as f:
        assert f.read() == data
    os.symlink(p, tmp_path / "link")
    return p, data


def loop_runners():
    out = [asyncio.run]
    try:
        import uvloop
        out.append(uvloop.run)
    except ImportError:
        pass
    return out


# ------------------------------------------------------------- what they look like

@pytest.mark.parametrize("mod,name", RUNNERS)
def test_runners_still_look_like_coroutine_functions(mod, name):
    fn = getattr(mod, name)
    assert type(fn).__name__ == "Runner"          # the fast path is in place
    assert inspect.iscoroutinefunction(fn)
    assert asyncio.iscoroutinefunction(fn)
    assert fn.__name__ == name and fn.__qualname__ == name
    assert fn.__module__ == mod.__name__
    assert inspect.iscoroutinefunction(fn.__wrapped__)
    assert inspect.signature(fn) == inspect.signature(fn.__wrapped__)
    assert fn.__doc__ == fn.__wrapped__.__doc__
    assert pickle.loads(pickle.dumps(fn)) is fn
    assert name in repr(fn)


def test_signatures_are_os_ones():
    assert list(inspect.signature(aos.pread).parameters) == ["fd", "n", "offset"]
    assert list(inspect.signature(aos.stat).parameters) == ["path", "dir_fd", "follow_symlinks"]
    assert list(inspect.signature(aos.lstat).parameters) == ["path", "dir_fd"]


def test_a_runner_as_class_attribute_binds_as_a_function(cached):
    p, data = cached

    class Reader:
        read_at = aos.pread

        def __init__(self, fd):
            self.fd = fd

    async def main():
        fd = os.open(p, os.O_RDONLY)
        try:
            r = Reader(fd)
            assert await Reader.read_at(fd, 4, 0) == data[:4]
            # bound: the instance comes first (as with a def)
            with pytest.raises(TypeError):
                await r.read_at(4, 0)
        finally:
            os.close(fd)
    asyncio.run(main())


@pytest.mark.parametrize("run", loop_runners())
def test_path_stat_and_lstat_are_runners_that_bind_as_methods(run, cached, tmp_path):
    """linuxaio.Path.stat and lstat are runners too (p.stat(): no coroutine of
    its own); bound to the path, with every form of call giving os's answer."""
    p, _ = cached
    link = tmp_path / "link"   # the fixture's, to p
    assert type(linuxaio.Path.stat).__name__ == "Runner"
    assert type(linuxaio.Path.lstat).__name__ == "Runner"
    assert inspect.iscoroutinefunction(linuxaio.Path.stat)
    assert list(inspect.signature(linuxaio.Path.stat).parameters) == ["self", "follow_symlinks"]
    lp, pp = linuxaio.Path(link), linuxaio.Path(p)

    async def main():
        assert await pp.stat() == os.stat(p)
        assert await lp.stat() == os.stat(link)
        assert await lp.lstat() == os.lstat(link)
        assert await lp.stat(follow_symlinks=False) == os.lstat(link)
        assert await linuxaio.Path.stat(lp) == os.stat(link)
        with pytest.raises(FileNotFoundError) as e:
            await linuxaio.Path(tmp_path / "absent").stat()
        assert e.value.filename == str(tmp_path / "absent")
        with pytest.raises(TypeError):
            await pp.stat(True)   # follow_symlinks is keyword-only, as pathlib's
    run(main())


def test_a_path_string_read_by_the_engine_is_os_fspath(cached, tmp_path):
    """The engine reads a linuxaio.Path's string from pathlib's cache (args.c):
    a fresh path (its string not made yet), one already made, and a subclass
    overriding __fspath__ (never read that way) all give os.fspath's path."""
    p, data = cached

    class Elsewhere(linuxaio.Path):
        def __fspath__(self):
            return str(p)

    async def main():
        fresh = linuxaio.Path(tmp_path) / "cached"          # no string made yet
        assert await aos.stat(fresh) == os.stat(p)
        assert await linuxaio.slurp(fresh) == data
        assert await fresh.stat() == os.stat(p)              # made by now
        assert await linuxaio.Path(tmp_path / "link").lstat() == os.lstat(tmp_path / "link")
        assert await aos.stat(Elsewhere(tmp_path / "absent")) == os.stat(p)
        with pytest.raises(FileNotFoundError) as e:
            await aos.stat(linuxaio.Path(tmp_path) / "absent")
        assert e.value.filename == str(tmp_path / "absent")
    asyncio.run(main())


# ------------------------------------------------------------- results and errors

@pytest.mark.parametrize("run", loop_runners())
def test_results_match_os_every_form(run, cached, tmp_path):
    p, data = cached
    link = tmp_path / "link"

    async def main():
        fd = os.open(p, os.O_RDONLY)
        dfd = os.open(tmp_path, os.O_RDONLY)
        try:
            for inline in (True, False):
                linuxaio.inline(inline)
                assert await aos.pread(fd, 100, 7) == os.pread(fd, 100, 7)
                assert await aos.pread(fd, 10, len(data) - 3) == data[-3:]
                buf = bytearray(50)
                assert await aos.preadinto(fd, buf, 20) == 50 and bytes(buf) == data[20:70]
                assert await aos.fstat(fd) == os.fstat(fd)
                assert await aos.stat(p) == os.stat(p)
                assert await aos.stat(str(link)) == os.stat(link)
                assert await aos.lstat(link) == os.lstat(link)
                assert await aos.stat(link, follow_symlinks=False) == os.lstat(link)
                assert await aos.stat("cached", dir_fd=dfd) == os.stat("cached", dir_fd=dfd)
                assert await aos.lstat("link", dir_fd=dfd) == os.lstat("link", dir_fd=dfd)
                assert await aos.stat(fd) == os.stat(fd)
                assert await linuxaio.slurp(p) == data
                assert await linuxaio.slurp(p, 5, 10) == data[5:15]
        finally:
            linuxaio.inline(True)
            os.close(fd)
            os.close(dfd)
    run(main())


@pytest.mark.parametrize("run", loop_runners())
def test_errors_carry_errno_and_filename(run, tmp_path):
    missing = str(tmp_path / "missing")

    async def main():
        for call in (lambda: aos.stat(missing), lambda: aos.lstat(missing),
                     lambda: linuxaio.slurp(missing)):
            with pytest.raises(FileNotFoundError) as e:
                await call()
            assert e.value.errno == 2 and e.value.strerror and e.value.filename == missing
        for call in (lambda: aos.fstat(987654), lambda: aos.pread(987654, 1, 0),
                     lambda: aos.preadinto(987654, bytearray(1), 0)):
            with pytest.raises(OSError) as e:
                await call()
            assert e.value.errno == 9
    run(main())


def test_bad_arguments_raise_at_the_call_with_nothing_queued(cached):
    p, _ = cached

    async def main():
        before = linuxaio.nreqs()
        with pytest.raises(TypeError):
            aos.pread("not an fd", 1, 0)            # no await: raised by the call
        with pytest.raises(TypeError):
            aos.pread(0, 1)                          # missing an argument
        with pytest.raises(TypeError):
            aos.pread(0, 1, 0, 4)                    # one too many
        with pytest.raises(TypeError):
            aos.stat(p, bogus=1)
        with pytest.raises(OSError) as e:
            aos.pread(0, -1, 0)                      # as os.pread: EINVAL
        assert e.value.errno == 22
        with pytest.raises(OverflowError):
            aos.pread(0, 1, 2 ** 70)
        with pytest.raises(TypeError):
            aos.preadinto(0, b"read-only", 0)
        with pytest.raises(TypeError):
            aos.fstat(None)
        with pytest.raises((TypeError, ValueError)):
            aos.stat("nul\0inside")
        with pytest.raises(TypeError):
            linuxaio.slurp(12.5)
        assert linuxaio.nreqs() == before
    asyncio.run(main())


# ------------------------------------------------------------- what is returned

def test_what_is_returned_works_with_asyncio(cached):
    p, data = cached

    async def main():
        fd = os.open(p, os.O_RDONLY)
        try:
            aw = aos.pread(fd, 8, 0)
            assert isinstance(aw, collections.abc.Coroutine) and asyncio.iscoroutine(aw)
            assert await aw == data[:8]
            assert await asyncio.create_task(aos.stat(p)) == os.stat(p)
            assert await asyncio.gather(aos.pread(fd, 2, 1), aos.fstat(fd), linuxaio.slurp(p)) \
                == [data[1:3], os.fstat(fd), data]
            assert await asyncio.wait_for(aos.lstat(p), 30) == os.lstat(p)
            assert await asyncio.shield(aos.pread(fd, 3, 3)) == data[3:6]
            done, _ = await asyncio.wait([asyncio.create_task(aos.pread(fd, 1, 0))])
            assert [t.result() for t in done] == [data[:1]]
            # ensure_future keeps a future as it is: the request itself
            r = aos.pread(fd, 1, 2)
            assert asyncio.ensure_future(r) is r and await r == data[2:3]
        finally:
            os.close(fd)
    asyncio.run(main())
    fd = os.open(p, os.O_RDONLY)
    try:
        # no loop running: the elsewhere hook's coroutine (trio's, in C),
        # which starts nothing until its first step and takes the asyncio
        # road there
        coro = aos.pread(fd, 5, 0)
        assert isinstance(coro, collections.abc.Coroutine) and asyncio.iscoroutine(coro)
        assert asyncio.run(coro) == data[:5]
        coro = aos.open(p, os.O_RDONLY)             # open too (trio's runner)
        assert asyncio.iscoroutine(coro)
        fd2 = asyncio.run(coro)
        assert os.pread(fd2, 5, 0) == data[:5]
        os.close(fd2)
    finally:
        os.close(fd)


def test_gather_cancelled_and_its_message(tmp_path):
    """Held in the engine (inline off, one worker blocked on a FIFO), the
    requests given to gather are cancelled with it; return_exceptions
    reads a cancelled child's message."""
    from async_helpers import HeldWorker
    p = tmp_path / "f"
    p.write_bytes(b"x" * 8192)

    async def main():
        fd = os.open(p, os.O_RDONLY)
        linuxaio.inline(False)
        try:
            with HeldWorker(tmp_path):
                reqs = [aos.pread(fd, 10, i) for i in range(20)]
                fut = asyncio.gather(*reqs)
                await asyncio.sleep(0)
                fut.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await fut
                assert all(r.cancelled() for r in reqs)
                r = aos.pread(fd, 1, 0)
                r.cancel("why")
                out = await asyncio.gather(r, return_exceptions=True)
                assert isinstance(out[0], asyncio.CancelledError) and out[0].args == ("why",)
        finally:
            linuxaio.inline(True)
            os.close(fd)
        for _ in range(200):
            if linuxaio.nreqs() == 0:
                break
            await asyncio.sleep(0.01)
        assert linuxaio.nreqs() == 0
    asyncio.run(main())


def test_a_task_cancelled_before_its_first_step(cached):
    p, _ = cached

    async def main():
        fd = os.open(p, os.O_RDONLY)
        try:
            for inline in (True, False):
                linuxaio.inline(inline)
                t = asyncio.create_task(aos.pread(fd, 10, 0))
                t.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await t
        finally:
            linuxaio.inline(True)
            os.close(fd)
        for _ in range(200):
            if linuxaio.nreqs() == 0:
                break
            await asyncio.sleep(0.01)
        assert linuxaio.nreqs() == 0
    asyncio.run(main())


def test_anyio_and_trio_start_soon_take_a_runner(cached):
    anyio = pytest.importorskip("anyio")
    trio = pytest.importorskip("trio")
    p, data = cached
    got = []

    async def main():
        fd = os.open(p, os.O_RDONLY)
        try:
            async def keep(fn, *args):
                got.append(await fn(*args))
            async with anyio.create_task_group() as tg:
                tg.start_soon(aos.pread, fd, 4, 0)   # the runner itself as the task's function
                tg.start_soon(keep, aos.stat, p)
        finally:
            os.close(fd)
    for backend in ("asyncio", "trio"):
        got.clear()
        anyio.run(main, backend=backend)
        assert got == [os.stat(p)]

    async def trio_main():
        fd = os.open(p, os.O_RDONLY)
        try:
            async with trio.open_nursery() as n:
                n.start_soon(aos.pread, fd, 4, 0)
                n.start_soon(aos.stat, p)
            assert await aos.pread(fd, 4, 4) == data[4:8]
        finally:
            os.close(fd)
    trio.run(trio_main)


# ------------------------------------------------------------- the loop found

def test_the_loop_found_is_the_running_one_across_runs_and_threads(cached):
    p, data = cached
    errors = []

    async def worker(n):
        fd = os.open(p, os.O_RDONLY)
        try:
            for i in range(n):
                r = aos.pread(fd, 16, i)
                assert r.get_loop() is asyncio.get_running_loop()
                assert await r == data[i:i + 16]
                if i % 50 == 0:
                    await asyncio.sleep(0)
        finally:
            os.close(fd)

    def thread(run):
        try:
            for _ in range(3):
                run(worker(300))
        except BaseException as e:   # noqa: B902 (reported below)
            errors.append(e)
    runs = loop_runners()
    ts = [threading.Thread(target=thread, args=(runs[i % len(runs)],)) for i in range(3)]
    for t in ts:
        t.start()
    for run in runs * 2:     # loops made, run, closed and replaced in this thread
        run(worker(300))
    for t in ts:
        t.join(120)
    assert not errors


def test_a_loop_run_in_another_thread_is_not_this_threads(cached):
    """A loop that ran here and now runs in another thread, while this
    thread runs a loop of its own: each request is bound to its own
    thread's loop."""
    p, data = cached
    loop_a = asyncio.new_event_loop()
    ready, release, seen = threading.Event(), threading.Event(), []

    async def here():
        fd = os.open(p, os.O_RDONLY)
        try:
            r = aos.pread(fd, 4, 0)
            seen.append(r.get_loop() is asyncio.get_running_loop())
            assert await r == data[:4]
        finally:
            os.close(fd)

    loop_a.run_until_complete(here())             # loop_a found in this thread

    async def there():
        ready.set()
        await loop_a.run_in_executor(None, release.wait)
        await here()

    t = threading.Thread(target=lambda: loop_a.run_until_complete(there()))
    t.start()
    ready.wait(30)
    try:
        asyncio.run(here())                       # this thread: a new loop
    finally:
        release.set()
        t.join(60)
        loop_a.close()
    assert seen == [True, True, True]


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_a_forked_child_has_no_running_loop_either_loop(loop):
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    code = f"""
import asyncio, inspect, os
import linuxaio
from linuxaio import os as aos
async def main():
    await aos.stat("/")                  # the loop is found and remembered
    pid = os.fork()
    if pid == 0:
        try:
            aw = aos.stat("/")           # no loop in the child: a coroutine
            if not asyncio.iscoroutine(aw):
                os._exit(6)
            aw.send(None)
        except RuntimeError as e:
            os._exit(0 if "no running" in str(e) else 3)
        except BaseException:
            os._exit(4)
        os._exit(5)
    _, status = os.waitpid(pid, 0)
    print("child", os.waitstatus_to_exitcode(status))
    print("parent", (await aos.stat("/")) == os.stat("/"))
{"import uvloop; uvloop.run(main())" if loop == "uvloop" else "asyncio.run(main())"}
"""
    proc, _ = run_python(code, timeout=60)
    assert "child 0" in proc.stdout and "parent True" in proc.stdout, (proc.stdout, proc.stderr)
