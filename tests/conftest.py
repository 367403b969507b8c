"""Shared fixtures: every test gets a time limit and leaves the engine clean.

The engine is process-global, so after each test we flush what is left,
restore the control surface to its defaults and insist nothing is left over.
"""
import asyncio
import faulthandler
import os
import signal
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import linuxaio  # noqa: E402

DEFAULT_TIMEOUT = 30      # seconds per test, unless marked aio_timeout(n)
# Every time limit times this: runs under valgrind (tools/valgrind.sh) are
# tens of times slower than the limits were set for.
TIME_SCALE = float(os.environ.get("LINUXAIO_TEST_TIME_SCALE", "1"))
CLEANUP_TIMEOUT = 15
DEFAULT_THREADS = 4       # the engine's default thread limit
DEFAULT_BLOCKING_THREADS = 32   # and its cap while requests block


# Where faulthandler's backstop writes: a copy of the real stderr, taken
# while pytest's capture is suspended.  During a test, sys.stderr and fd 2 are
# pytest's capture file, and a dump written there is lost with the process
# when faulthandler exits it: the run then ends silently, with no traceback
# and no summary (seen twice under load in CI's 3.13 -X dev run).
_backstop_fd = None


def pytest_configure(config):
    global _backstop_fd
    config.addinivalue_line(
        "markers", "aio_timeout(seconds): fail the test if it runs longer than that")
    if _backstop_fd is None:
        _backstop_fd = os.dup(sys.__stderr__.fileno())
        os.set_inheritable(_backstop_fd, False)


def _arm_backstop(seconds):
    """Dump every thread's stack to the real stderr and exit the run (status 1)
    if the test is still running after seconds: a hang inside C code that the
    alarm cannot break."""
    faulthandler.dump_traceback_later(seconds, exit=True, file=_backstop_fd)


class AioTestTimeout(BaseException):
    """A test ran past its time limit.  Not an Exception: hypothesis takes an
    Exception for a falsifying example and goes on to shrink and replay it
    (with no alarm left: minutes more, under load), and a test's `except
    Exception` would swallow it; either way faulthandler's backstop then
    ended the whole run."""


_timed_out = False


def _on_alarm(signum, frame):
    global _timed_out
    _timed_out = True
    # Where the alarm lands in an asyncio or uvloop loop's callback (the
    # engine's reader callback, most often), the loop logs the exception
    # and goes on: the test then ran on until the backstop ended the whole
    # run (seen in CI's 3.13 -X dev run: 5,000 awaiting tasks under asyncio's
    # debug mode, on a loaded machine).  Stopping the loop ends its
    # run_until_complete() with RuntimeError instead, and the teardown
    # below still says that the time limit was the cause.
    loop = asyncio._get_running_loop()
    if loop is not None:
        loop.stop()
    raise AioTestTimeout("test exceeded its time limit (a hang?)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    if call.when == "call":
        item.aio_call_failed = outcome.get_result().failed


def restore_defaults():
    linuxaio.inline(True)
    linuxaio.max_outstanding(0)
    linuxaio.poll_helps(True)
    linuxaio.max_poll_reqs(0)
    linuxaio.max_poll_time(0)
    linuxaio.min_parallel(DEFAULT_THREADS)
    linuxaio.max_blocking_parallel(DEFAULT_BLOCKING_THREADS)
    linuxaio.max_parallel(DEFAULT_THREADS)
    linuxaio.max_idle(4)
    linuxaio.idle_timeout(10)


@pytest.fixture
def engine_only():
    """Inline-first awaits off: the test is about requests that reach the
    engine (queued, running, cancelled there), which a cached call would
    otherwise never do."""
    linuxaio.inline(False)
    try:
        yield
    finally:
        linuxaio.inline(True)


@pytest.fixture(autouse=True)
def engine_guard(request):
    marker = request.node.get_closest_marker("aio_timeout")
    timeout = int((int(marker.args[0]) if marker else DEFAULT_TIMEOUT) * TIME_SCALE)
    global _timed_out
    _timed_out = False
    old = signal.signal(signal.SIGALRM, _on_alarm)
    # The alarm breaks waits that check for signals; faulthandler is the
    # backstop for a hang inside C code: it dumps the stacks and exits.
    _arm_backstop(timeout + CLEANUP_TIMEOUT + 30)
    signal.alarm(timeout)
    try:
        yield
    finally:
        signal.alarm(0)
        problems = []
        if _timed_out and not getattr(request.node, "aio_call_failed", True):
            # the test passed, its time-limit exception swallowed somewhere
            problems.append(f"the test exceeded its time limit ({timeout} s)")
        # pytest cancels faulthandler's timer when a test fails: re-arm it
        # so that a cleanup stuck in C code (reinit) still ends the run.
        _arm_backstop(CLEANUP_TIMEOUT * 2 + 30)
        try:
            signal.alarm(CLEANUP_TIMEOUT)
            restore_defaults()
            for _ in range(1000):
                try:
                    linuxaio.flush()
                    break
                except AioTestTimeout:
                    problems.append("flush() hung in cleanup")
                    break
                except Exception:   # a test's callback raising: keep flushing
                    continue
        except AioTestTimeout:
            problems.append("cleanup hung")
        finally:
            signal.alarm(0)
        left, pending = linuxaio.nreqs(), linuxaio.npending()
        if left or pending:
            problems.append(f"nreqs()={left} npending()={pending} after the test")
            signal.alarm(CLEANUP_TIMEOUT)
            try:
                linuxaio.reinit()   # do not let the mess spill into other tests
            finally:
                signal.alarm(0)
        faulthandler.cancel_dump_traceback_later()
        signal.signal(signal.SIGALRM, old)
        assert not problems, "; ".join(problems)


@pytest.fixture
def scratch(tmp_path):
    """A scratch directory (a pathlib.Path)."""
    return tmp_path


@pytest.fixture
def datafile(tmp_path):
    """A 64 KiB file of known, non-repeating content: (path, bytes)."""
    data = bytes((i * 7 + i // 251) & 0xFF for i in range(65536))
    p = tmp_path / "data.bin"
    p.write_bytes(data)
    return p, data


@pytest.fixture
def rfd(datafile):
    """A read-only fd on datafile, closed after the test."""
    fd = os.open(datafile[0], os.O_RDONLY)
    yield fd
    os.close(fd)
