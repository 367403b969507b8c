"""Run one async test body under asyncio, uvloop and trio.

A test takes the ``runner`` fixture (import it from here) and writes its body
once, as ``async def main(rt): ...``, then calls ``runner.run(main)``.  The
body reaches the loop only through the Runner's few primitives (sleep,
gather, timeouts, cancelling a task), so the same lines run on every loop.
"""
from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import os
import threading
import time
from typing import Any, Awaitable, Callable

import pytest

import linuxaio

RUNNER_NAMES = ("asyncio", "uvloop", "trio")
DEFAULT_THREADS = 4

AsyncFn = Callable[..., Awaitable[Any]]


def fd_count(under: str | os.PathLike | None = None) -> int:
    """Open fds of this process; with under, only those on files below that
    directory (so fds that other threads open meanwhile do not count)."""
    names = os.listdir("/proc/self/fd")
    if under is None:
        return len(names)
    prefix = os.path.realpath(under) + os.sep
    n = 0
    for name in names:
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        n += target.startswith(prefix)
    return n


class Outcome:
    """How a task that was cancelled (or not) ended."""

    def __init__(self) -> None:
        self.state = "pending"      # "cancelled", "result", "error"
        self.value: Any = None

    def __repr__(self) -> str:
        return f"Outcome({self.state}, {self.value!r})"


class Runner:
    name = "?"
    cancelled_exc: type[BaseException] = BaseException

    def run(self, afn: AsyncFn, *args: Any) -> Any:
        raise NotImplementedError

    # -- inside run() --
    async def sleep(self, seconds: float) -> None:
        raise NotImplementedError

    async def gather(self, *afns: Callable[[], Awaitable[Any]]) -> list:
        """Run each zero-argument async callable in its own task; results in order."""
        raise NotImplementedError

    async def timeout(self, seconds: float, afn: Callable[[], Awaitable[Any]]) -> tuple[bool, Any]:
        """(timed_out, result) of afn() under the loop's own timeout."""
        raise NotImplementedError

    async def cancel_task(self, afn: Callable[[], Awaitable[Any]],
                          before_cancel: Callable[[], Any] | None = None,
                          wait: Callable[[], bool] | None = None) -> Outcome:
        """Start afn() in its own task, let it run until it first blocks,
        wait (async) until wait() is true, call before_cancel() (with the
        loop blocked), cancel the task and wait for it to end."""
        raise NotImplementedError

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0,
                         what: str = "condition") -> None:
        """Poll predicate() while letting the loop run."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            await self.sleep(0.001)

    async def drained(self, timeout: float = 10.0) -> None:
        """Wait, letting the loop drain completions, until the engine is empty."""
        await self.wait_until(lambda: linuxaio.nreqs() == 0, timeout, "nreqs() == 0")

    def __repr__(self) -> str:
        return self.name


class AsyncioRunner(Runner):
    name = "asyncio"
    cancelled_exc = asyncio.CancelledError

    def run(self, afn: AsyncFn, *args: Any) -> Any:
        return asyncio.run(afn(self, *args))

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def gather(self, *afns: Callable[[], Awaitable[Any]]) -> list:
        return list(await asyncio.gather(*(f() for f in afns)))

    async def timeout(self, seconds: float, afn: Callable[[], Awaitable[Any]]) -> tuple[bool, Any]:
        try:
            return False, await asyncio.wait_for(afn(), seconds)
        except asyncio.TimeoutError:
            return True, None

    async def cancel_task(self, afn, before_cancel=None, wait=None) -> Outcome:
        out = Outcome()
        started = []

        async def child():
            started.append(1)
            try:
                out.value = await afn()
                out.state = "result"
            except asyncio.CancelledError:
                out.state = "cancelled"
                raise
            except Exception as e:
                out.state, out.value = "error", e

        task = asyncio.get_running_loop().create_task(child())
        await self.wait_until(lambda: bool(started), what="the task to start")
        if wait is not None:
            await self.wait_until(wait, what="the cancel point")
        if before_cancel is not None:
            before_cancel()
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            if out.state == "pending":     # cancelled before its first step
                out.state = "cancelled"
        return out


class UvloopRunner(AsyncioRunner):
    name = "uvloop"

    def run(self, afn: AsyncFn, *args: Any) -> Any:
        uvloop = pytest.importorskip("uvloop", reason="uvloop runs the asyncio tests on libuv")
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as r:   # as uvloop.run does
            return r.run(afn(self, *args))


class TrioRunner(Runner):
    name = "trio"

    def __init__(self) -> None:
        self.trio = pytest.importorskip("trio", reason="trio runs the tests under trio")
        self.cancelled_exc = self.trio.Cancelled

    def run(self, afn: AsyncFn, *args: Any) -> Any:
        return self.trio.run(afn, self, *args)

    async def sleep(self, seconds: float) -> None:
        await self.trio.sleep(seconds)

    async def gather(self, *afns: Callable[[], Awaitable[Any]]) -> list:
        results: list = [None] * len(afns)

        async def one(i, f):
            results[i] = await f()

        async with self.trio.open_nursery() as nursery:
            for i, f in enumerate(afns):
                nursery.start_soon(one, i, f)
        return results

    async def timeout(self, seconds: float, afn: Callable[[], Awaitable[Any]]) -> tuple[bool, Any]:
        result = None
        with self.trio.move_on_after(seconds) as scope:
            result = await afn()
        return scope.cancelled_caught, result

    async def cancel_task(self, afn, before_cancel=None, wait=None) -> Outcome:
        trio = self.trio
        out = Outcome()
        scopes = []

        async def child():
            with trio.CancelScope() as cs:
                scopes.append(cs)
                try:
                    out.value = await afn()
                    out.state = "result"
                except trio.Cancelled:
                    out.state = "cancelled"
                    raise
                except Exception as e:
                    out.state, out.value = "error", e

        async with trio.open_nursery() as nursery:
            nursery.start_soon(child)
            await self.wait_until(lambda: bool(scopes), what="the task to start")
            if wait is not None:
                await self.wait_until(wait, what="the cancel point")
            if before_cancel is not None:
                before_cancel()
            scopes[0].cancel()
        return out


def make_runner(name: str) -> Runner:
    if name == "asyncio":
        return AsyncioRunner()
    if name == "uvloop":
        pytest.importorskip("uvloop", reason="uvloop runs the asyncio tests on libuv")
        return UvloopRunner()
    if name == "trio":
        return TrioRunner()
    raise ValueError(name)


@pytest.fixture(params=RUNNER_NAMES)
def runner(request) -> Runner:
    """Each test that takes it runs once under asyncio, uvloop and trio."""
    return make_runner(request.param)


@contextlib.contextmanager
def single_worker(busy: float | None = None):
    """One worker thread; with busy, it is kept busy that long (started
    before the block's body runs).  Afterwards the thread limit is the
    default again; the busy request is left for the caller to drain."""
    linuxaio.max_parallel(1)
    try:
        if busy is not None:
            linuxaio.aio_busy(busy)
            wait_until(lambda: linuxaio.nready() == 0, what="the busy request to start")
        yield
    finally:
        linuxaio.min_parallel(DEFAULT_THREADS)


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    """Block (the loop too) until predicate() is true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.001)


def patterned(size: int, seed: int = 0) -> bytes:
    """size bytes in which no 8-byte-aligned word repeats (its offset is in it)."""
    out = bytearray(size + 8)
    for off in range(0, size + 8, 8):
        out[off:off + 8] = ((off * 2654435761 + seed) & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little")
    return bytes(out[:size])


def in_thread(fn: Callable[[], Any], name: str = "loop") -> Callable[[], Any]:
    """Start fn() in a thread; the returned join() gives its result or raises its error."""
    box: dict = {}

    def body():
        try:
            box["result"] = fn()
        except BaseException as e:   # noqa: BLE001 - handed to the joiner
            box["error"] = e

    t = threading.Thread(target=body, name=name, daemon=True)
    t.start()

    def join(timeout: float = 30.0):
        t.join(timeout)
        if t.is_alive():
            raise AssertionError(f"thread {name} hung")
        if "error" in box:
            raise box["error"]
        return box.get("result")

    return join


@contextlib.contextmanager
def draining_loop_in_another_thread(path: str | os.PathLike):
    """An asyncio loop in another thread that watches poll_fileno() (it has
    awaited one stat of path) and idles, so it drains every result that
    becomes ready, whoever awaits it."""
    stop = threading.Event()
    ready = threading.Event()

    async def idle():
        await linuxaio.os.stat(path)
        ready.set()
        while not stop.is_set():
            await asyncio.sleep(0.002)

    join = in_thread(lambda: asyncio.run(idle()), name="drainer")
    try:
        if not ready.wait(10):
            raise AssertionError("the other thread's loop did not start")
        yield
    finally:
        stop.set()
        join()


def open_fifo_writer_briefly(path: str | os.PathLike, timeout: float = 5.0) -> None:
    """Open a FIFO's write end and close it again, so that a reader blocked
    in open() returns.  Retries while the reader is not in open() yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as e:
            if e.errno != errno.ENXIO or time.monotonic() > deadline:
                raise
            time.sleep(0.001)
            continue
        os.close(fd)
        return


_held_numbers = itertools.count()


class HeldWorker:
    """max_parallel(1), and the one worker blocked in open() of a FIFO until
    release(): requests submitted meanwhile stay queued, for as long as the
    test wants, and then run without any sleeping.  The held open's fd is
    closed by its callback (when a loop or flush drains it)."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.fifo = os.path.join(directory, f"held-worker-{next(_held_numbers)}.fifo")
        self.released = False

    def __enter__(self) -> "HeldWorker":
        os.mkfifo(self.fifo)
        linuxaio.max_parallel(1)
        linuxaio.aio_open(self.fifo, os.O_RDONLY, 0, self._opened)
        wait_until(lambda: linuxaio.nready() == 0, what="the worker to take the FIFO open")
        return self

    @staticmethod
    def _opened(fd: Any) -> None:
        if isinstance(fd, int):
            os.close(fd)

    def release(self) -> None:
        if not self.released:
            self.released = True
            open_fifo_writer_briefly(self.fifo)

    def __exit__(self, *exc: Any) -> None:
        self.release()
        linuxaio.min_parallel(DEFAULT_THREADS)
