"""A linuxaio call under trio (src/engine/trio_fast.c, _loop.py's trio part):
trio's cancel check, an inline try, trio's schedule point; what the try
cannot finish goes to the engine as the same request.

Every call stays a checkpoint (trio.testing.assert_checkpoints counts it),
a call in a cancelled scope raises Cancelled before anything happened, one
that completed inline returns its result (it happened, as a sync call), and
results and exceptions are the synchronous os call's.
"""
import collections.abc
import os

import pytest

import linuxaio
from linuxaio import _engine, _loop
from linuxaio import os as aos

trio = pytest.importorskip("trio")
import trio.testing  # noqa: E402

STAT_OK, OPEN_OK = _engine._inline_mounts()
needs_local_open = pytest.mark.skipif(
    not OPEN_OK, reason="a network or FUSE file system is mounted: opens are not tried inline")


def inline_count():
    return _engine._inline_stats()[0]


def open_fds():
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def cached(tmp_path):
    data = os.urandom(128 * 1024)
    p = tmp_path / "cached"
    p.write_bytes(data)
    with open(p, "rb") as f:   # every page in the cache
        assert f.read() == data
    return p, data


@pytest.fixture(params=[True, False], ids=["inline", "engine"])
def inline_mode(request):
    old = linuxaio.inline()
    linuxaio.inline(request.param)
    yield request.param
    linuxaio.inline(old)


def same_error(call, sync):
    """The exception the sync call raises, and the one the await raised."""
    with pytest.raises(OSError) as want:
        sync()
    with pytest.raises(OSError) as got:
        trio.run(call)
    assert type(got.value) is type(want.value)
    assert (got.value.errno, got.value.strerror, got.value.filename) == \
        (want.value.errno, want.value.strerror, want.value.filename)


# ---------------------------------------------------------------- results

def test_results_are_the_sync_calls(cached, inline_mode):
    p, data = cached

    async def main():
        fd = os.open(p, os.O_RDONLY)
        try:
            before = inline_count()
            assert await aos.pread(fd, 4096, 100) == os.pread(fd, 4096, 100)
            assert await aos.pread(fd, 4096, len(data) - 10) == data[-10:]
            assert await aos.pread(fd, 0, 0) == b""
            assert await aos.fstat(fd) == os.fstat(fd)
            assert await aos.stat(p) == os.stat(p)
            assert await aos.lstat(p) == os.lstat(p)
            buf = bytearray(1000)
            assert await aos.preadinto(fd, buf, 7) == 1000 and bytes(buf) == data[7:1007]
            # past the inline cap: always the engine's
            assert await aos.pread(fd, 100 * 1024, 3) == data[3:3 + 100 * 1024]
            assert await linuxaio.slurp(p) == data
            fd2 = await aos.open(p, os.O_RDONLY)
            try:
                assert os.fstat(fd2).st_ino == os.fstat(fd).st_ino
                assert os.get_inheritable(fd2) is False
            finally:
                os.close(fd2)
            if inline_mode:
                assert inline_count() > before + 5
            else:
                assert inline_count() == before
        finally:
            os.close(fd)
    trio.run(main)


def test_errors_are_the_sync_calls(cached, tmp_path, inline_mode):
    p, _ = cached
    missing = str(tmp_path / "missing")
    same_error(lambda: aos.stat(missing), lambda: os.stat(missing))
    same_error(lambda: aos.open(missing, os.O_RDONLY), lambda: os.open(missing, os.O_RDONLY))
    same_error(lambda: aos.pread(-1, 10, 0), lambda: os.pread(-1, 10, 0))
    fd = os.open(p, os.O_RDONLY)
    try:
        same_error(lambda: aos.pread(fd, 10, -1), lambda: os.pread(fd, 10, -1))
        same_error(lambda: aos.pread(fd, -1, 0), lambda: os.pread(fd, -1, 0))
    finally:
        os.close(fd)
    same_error(lambda: aos.pread(1 << 20, 10, 0), lambda: os.pread(1 << 20, 10, 0))   # EBADF
    same_error(lambda: aos.open(str(tmp_path), os.O_WRONLY), lambda: os.open(str(tmp_path), os.O_WRONLY))


@pytest.mark.parametrize("call, error", [
    (lambda fd: aos.pread(fd, "10", 0), TypeError),
    (lambda fd: aos.pread("fd", 10, 0), TypeError),
    (lambda fd: aos.pread(fd, 10, 1 << 70), OverflowError),
    (lambda fd: aos.stat("a\0b"), ValueError),
    (lambda fd: aos.preadinto(fd, b"read-only", 0), TypeError),
    (lambda fd: _loop._trio_wait(_engine.pread, fd, 10), TypeError),        # too few
    (lambda fd: _loop._trio_wait(_engine.pread, fd, 10, 0, 0), TypeError),  # too many
])
def test_bad_arguments_raise_and_queue_nothing(cached, call, error, inline_mode):
    p, _ = cached

    async def main():
        fd = os.open(p, os.O_RDONLY)
        try:
            before = linuxaio.nreqs(), inline_count()
            with pytest.raises(error):
                await call(fd)
            assert (linuxaio.nreqs(), inline_count()) == before
        finally:
            os.close(fd)
    trio.run(main)


# ---------------------------------------------------------------- checkpoints

def test_every_call_is_a_checkpoint(cached, tmp_path, inline_mode):
    """trio's own test of a checkpoint: a cancel point and a schedule point,
    on the inline path, the engine path, errors and batches alike."""
    p, _ = cached

    async def main():
        fd = os.open(p, os.O_RDONLY)
        try:
            for call in (lambda: aos.pread(fd, 4096, 0), lambda: aos.fstat(fd),
                         lambda: aos.stat(p), lambda: linuxaio.slurp(p),
                         lambda: aos.pread(fd, 100 * 1024, 0),
                         lambda: aos.stat_many([str(p)] * 3)):
                with trio.testing.assert_checkpoints():
                    await call()
            with trio.testing.assert_checkpoints():
                with pytest.raises(FileNotFoundError):
                    await aos.stat(str(tmp_path / "missing"))
        finally:
            os.close(fd)
    trio.run(main)


def test_a_call_in_a_cancelled_scope_raises_before_it_runs(cached, tmp_path, inline_mode):
    p, _ = cached
    target = tmp_path / "created"

    async def main():
        fd = os.open(p, os.O_RDONLY)
        try:
            fds, n = open_fds(), inline_count()
            for call in (lambda: aos.pread(fd, 10, 0), lambda: aos.stat(p),
                         lambda: aos.open(p, os.O_RDONLY),
                         lambda: aos.open(target, os.O_WRONLY | os.O_CREAT, 0o600),
                         lambda: linuxaio.slurp(p)):
                with trio.CancelScope() as scope:
                    scope.cancel()
                    await call()
                    raise AssertionError("not reached: the call is a cancel point")
                assert scope.cancelled_caught
            with trio.move_on_at(trio.current_time() - 1) as scope:   # a deadline past
                await aos.pread(fd, 10, 0)
                raise AssertionError("not reached")
            assert scope.cancelled_caught
            assert inline_count() == n          # nothing tried
            assert open_fds() == fds            # nothing opened
            assert not target.exists()          # nothing created
        finally:
            os.close(fd)
    trio.run(main)


def test_a_call_done_inline_returns_its_result_even_if_cancelled_meanwhile(cached):
    """A cancellation that arrives while a completed call passes its
    schedule point is raised at the next checkpoint: the call happened and
    its result (an fd) is the caller's.  Whatever the order the scheduler
    picks, every fd opened is returned once: none leaks, none is closed."""
    p, _ = cached

    async def main():
        got, base = [], open_fds()

        async def opener(scope):
            with scope:
                while True:
                    got.append(await aos.open(p, os.O_RDONLY))

        async def canceller(scope):
            for _ in range(25):
                await trio.lowlevel.checkpoint()
            scope.cancel()

        for _ in range(4):
            scope = trio.CancelScope()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(opener, scope)
                nursery.start_soon(canceller, scope)
        assert got
        assert open_fds() == base + len(got)
        for fd in got:
            os.close(fd)     # each one open, and the caller's
        assert open_fds() == base
    trio.run(main)


def test_another_task_runs_between_two_inline_calls(cached):
    p, _ = cached

    async def main():
        fd = os.open(p, os.O_RDONLY)
        ticks = []

        async def ticker():
            while True:
                ticks.append(1)
                await trio.lowlevel.checkpoint()
        try:
            n = inline_count()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ticker)
                await trio.lowlevel.checkpoint()
                before = len(ticks)
                for _ in range(20):
                    await aos.pread(fd, 10, 0)
                assert len(ticks) - before >= 19
                nursery.cancel_scope.cancel()
            assert inline_count() >= n + 20
        finally:
            os.close(fd)
    trio.run(main)


# ---------------------------------------------------------------- the coroutine

def test_the_call_is_a_coroutine_trio_can_start(cached):
    p, data = cached

    async def main():
        fd = os.open(p, os.O_RDONLY)
        try:
            coro = _loop._trio_wait(_engine.pread, fd, 10, 0)
            assert isinstance(coro, collections.abc.Coroutine)
            assert await coro == data[:10]
            with pytest.raises(RuntimeError):
                await coro           # awaited once only
            out = []

            async def keep(fn, *args):
                out.append(await fn(*args))
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_loop._trio_wait, _engine.pread, fd, 5, 1)
                nursery.start_soon(keep, _loop._trio_wait, _engine.fstat, fd)
            assert out == [os.fstat(fd)]
        finally:
            os.close(fd)
    trio.run(main)


@needs_local_open
def test_a_dropped_call_done_inline_closes_its_fd(cached):
    """An open completed inline whose coroutine is closed at its schedule
    point (nobody will take the fd): the fd is closed."""
    p, _ = cached

    async def main():
        base, n = open_fds(), inline_count()
        coro = _loop._trio_wait(_engine.open, str(p), os.O_RDONLY, 0o777, None)
        coro.send(None)              # the open ran; now at trio's schedule point
        assert inline_count() == n + 1 and open_fds() == base + 1
        coro.close()
        assert open_fds() == base
        coro = _loop._trio_wait(_engine.open, str(p), os.O_RDONLY, 0o777, None)
        coro.send(None)
        del coro                     # dropped: the same
        assert open_fds() == base
    trio.run(main)


@needs_local_open
def test_a_throw_at_the_schedule_point_closes_the_fd_done_inline(cached):
    p, _ = cached

    async def main():
        base = open_fds()
        coro = _loop._trio_wait(_engine.open, str(p), os.O_RDONLY, 0o777, None)
        coro.send(None)              # done inline, at trio's schedule point
        assert open_fds() == base + 1
        with pytest.raises(KeyError):
            coro.throw(KeyError("x"))
        assert open_fds() == base
    trio.run(main)


def test_the_schedule_point_is_trios_own_yield(cached):
    """_trio_call yields what trio's cancel_shielded_checkpoint yields to its
    runner (when its body is the known one), and unwraps what comes back:
    an Error outcome is raised from the await."""
    import outcome
    p, _ = cached
    msg = _loop._trio_schedule_msg(trio.lowlevel.cancel_shielded_checkpoint)
    assert _loop._trio_schedule_msg(trio.lowlevel.checkpoint) is None
    assert _loop._trio_schedule_msg(lambda: None) is None

    async def main():
        n = inline_count()
        coro = _loop._trio_wait(_engine.stat, str(p), None, 0)
        yielded = coro.send(None)
        if inline_count() == n:
            coro.close()
            pytest.skip("the stat was not done inline here")
        if msg is not None:
            assert yielded is msg
            with pytest.raises(KeyError):
                coro.send(outcome.Error(KeyError("x")))
        else:
            coro.close()
        coro = _loop._trio_wait(_engine.stat, str(p), None, 0)
        coro.send(None)
        with pytest.raises(StopIteration) as stop:
            coro.send(outcome.Value(None))
        assert stop.value.value == os.stat(p)
    trio.run(main)


@needs_local_open
@pytest.mark.parametrize("flags", [os.O_RDONLY, os.O_RDWR | os.O_APPEND, os.O_RDONLY | os.O_NONBLOCK,
                                   os.O_WRONLY | os.O_SYNC, os.O_RDONLY | os.O_NOATIME,
                                   os.O_RDONLY | os.O_ASYNC])
def test_an_fd_opened_inline_has_the_status_flags_of_os_open(cached, flags):
    """The try opens with O_NONBLOCK (a FIFO would wait) and sets the
    status flags back: F_GETFL says what os.open's fd says."""
    import fcntl
    p, _ = cached

    async def main():
        n = inline_count()
        fd = await aos.open(p, flags)
        assert inline_count() == n + 1
        want = os.open(p, flags)
        try:
            assert fcntl.fcntl(fd, fcntl.F_GETFL) == fcntl.fcntl(want, fcntl.F_GETFL)
        finally:
            os.close(fd)
            os.close(want)
    trio.run(main)


def test_a_throw_into_an_unstarted_call_raises_it_and_runs_nothing(cached):
    p, _ = cached
    n = inline_count()
    coro = _loop._trio_wait(_engine.stat, str(p), None, 0)
    with pytest.raises(KeyError):
        coro.throw(KeyError("x"))
    coro.close()
    assert inline_count() == n


def test_outside_a_trio_run_it_says_so(cached):
    p, _ = cached
    fd = os.open(p, os.O_RDONLY)
    try:
        for submit, args in ((_engine.pread, (fd, 10, 0)), (_engine.close, (-1,))):
            coro = _loop._trio_wait(submit, *args)
            with pytest.raises(RuntimeError, match="no running asyncio loop or trio run"):
                coro.send(None)
    finally:
        os.close(fd)


def test_runs_in_turn_each_get_their_engine_path(cached):
    """The engine path of each run (its drainer) after the fast path was set
    up in another run."""
    p, data = cached

    async def main():
        fd = os.open(p, os.O_RDONLY)
        try:
            assert await aos.pread(fd, 10, 0) == data[:10]
            assert await aos.pread(fd, 100 * 1024, 0) == data[:100 * 1024]   # the engine's
        finally:
            os.close(fd)
    for _ in range(3):
        trio.run(main)


def test_each_run_drains_requests_nobody_awaits(cached):
    """A request submitted with no awaiter (a read-only file's close) is
    drained by the run's drainer, which the first call of each run starts,
    even a call that completed inline."""
    p, _ = cached

    async def main():
        fd = os.open(p, os.O_RDONLY)
        await aos.fstat(fd)                # inline: the run is set up here
        _engine.aio_close(fd)              # not awaited
        with trio.fail_after(60):
            while linuxaio.nreqs():
                await trio.sleep(0.001)
        with pytest.raises(OSError):
            os.fstat(fd)
    for _ in range(3):
        trio.run(main)


# ------------------------------------------------- the road from the call

@pytest.fixture(params=["here", "coroutine"])
def cancel_check(request, monkeypatch):
    """trio's cancel check done by _trio_call itself (its known body), or
    trio's checkpoint_if_cancelled() coroutine awaited (any other trio);
    set up again by each run's first call."""
    if request.param == "coroutine":
        monkeypatch.setattr(_loop, "_trio_run_context", lambda lowlevel: None)
    elif _loop._trio_run_context(trio.lowlevel) is None:
        pytest.skip("this trio's checkpoint_if_cancelled is not the known one")
    return request.param


def test_the_os_twins_are_trios_coroutine_at_the_call(cached, tmp_path):
    """Under trio a runner (pread, stat, open...) gives trio's C coroutine at
    once, no async def level; made and never awaited, it did nothing (an
    open(O_CREAT) created no file)."""
    p, _ = cached
    target = tmp_path / "never"

    async def main():
        fd = os.open(p, os.O_RDONLY)
        try:
            n, fds = inline_count(), open_fds()
            for aw in (aos.pread(fd, 10, 0), aos.fstat(fd), aos.stat(p), aos.lstat(p),
                       aos.open(p, os.O_RDONLY), aos.open(target, os.O_WRONLY | os.O_CREAT),
                       linuxaio.slurp(p)):
                assert type(aw).__name__ == "_TrioCall", aw
                aw.close()
            assert (inline_count(), open_fds()) == (n, fds) and not target.exists()
            new_fd = await aos.open(p, os.O_RDONLY)      # the runner's road
            os.close(new_fd)
        finally:
            os.close(fd)
    trio.run(main)


def test_checkpoints_and_cancelled_scopes_either_cancel_check(cached, tmp_path, cancel_check,
                                                              inline_mode):
    """Each call is a checkpoint (trio's assert_checkpoints counts the cancel
    point and the schedule point), and in a cancelled scope raises Cancelled
    before anything happened: an open(O_CREAT) through open's runner (two
    arguments) creates nothing."""
    p, data = cached
    target = tmp_path / "created"

    async def main():
        fd = os.open(p, os.O_RDONLY)
        try:
            with trio.testing.assert_checkpoints():
                assert await aos.pread(fd, 10, 0) == data[:10]
            with trio.testing.assert_checkpoints():
                assert await aos.stat(p) == os.stat(p)
            with trio.testing.assert_checkpoints():
                os.close(await aos.open(p, os.O_RDONLY))
            fds, n = open_fds(), inline_count()
            for call in (lambda: aos.pread(fd, 10, 0), lambda: aos.open(p, os.O_RDONLY),
                         lambda: aos.open(target, os.O_WRONLY | os.O_CREAT)):
                with trio.CancelScope() as scope:
                    scope.cancel()
                    await call()
                    raise AssertionError("not reached: the call is a cancel point")
                assert scope.cancelled_caught
            assert (inline_count(), open_fds()) == (n, fds) and not target.exists()
        finally:
            os.close(fd)
    trio.run(main)


def test_a_pending_keyboard_interrupt_is_raised_at_the_cancel_check(cached, cancel_check):
    """The main task's pending KeyboardInterrupt (trio's ki_pending) stops a
    call at its cancel check, as checkpoint_if_cancelled() does."""
    p, _ = cached

    async def main():
        n = inline_count()
        trio.lowlevel.current_task()._runner.deliver_ki()
        with pytest.raises(KeyboardInterrupt):
            await aos.stat(p)
        assert inline_count() == n   # not tried
    trio.run(main)


def test_asyncio_imported_after_linuxaio_is_found_at_the_first_await():
    """Before asyncio is imported linuxaio's hook cannot ask it for a loop:
    a call made then is trio's coroutine, which at its first step under an
    asyncio loop takes asyncio's road (and installs the hook), for a row
    (pread, stat, open) and a batch (stat_many) alike."""
    from aio_helpers import run_python
    code = """
import os, sys
import linuxaio
from linuxaio import os as aos
assert "asyncio" not in sys.modules
import asyncio
p = sys.executable
async def main():
    fd = await aos.open(p, os.O_RDONLY)
    assert await aos.pread(fd, 4, 0) == os.pread(fd, 4, 0)
    assert await aos.fstat(fd) == os.fstat(fd)
    await aos.close(fd)
    assert await aos.stat_many([p]) == [os.stat(p)]
    assert await aos.stat(p) == os.stat(p)
    print("ok")
asyncio.run(main())
coro = aos.stat(p)                  # made with no loop, awaited under one
print(asyncio.run(coro) == os.stat(p))
"""
    proc, _ = run_python(code, timeout=60)
    assert proc.stdout.split() == ["ok", "True"], (proc.stdout, proc.stderr)
