"""Small helpers shared by the linuxaio tests."""
import os
import subprocess
import sys
import time

import linuxaio

# Where the linuxaio under test comes from (site-packages in CI, src/ with an
# in-place build in development): subprocesses must import the same one.
LINUXAIO_HOME = os.path.dirname(os.path.dirname(os.path.abspath(linuxaio.__file__)))


def fd_count():
    """Open file descriptors of this process."""
    return len(os.listdir("/proc/self/fd"))


def rss():
    """Resident set size of this process, in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def wait_until(predicate, timeout=5.0, what="condition"):
    """Poll predicate() until true; fail (not hang) after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.002)


def wait_pending(n, timeout=5.0):
    """Wait until n results sit in the result queue, waiting for poll_cb."""
    wait_until(lambda: linuxaio.npending() >= n, timeout, f"npending() >= {n}")


def wait_started(timeout=5.0):
    """Wait until no request is left queued (all were picked up by workers)."""
    wait_until(lambda: linuxaio.nready() == 0, timeout, "nready() == 0")


def idle_workers_after_quick_requests(n):
    """n workers started, requests looking quick to the engine (its moving
    average of run time), and every worker asleep since nothing was in
    flight: the state in which dispatch() trusts spinners and a standby."""
    linuxaio.min_parallel(n)
    for _ in range(n):
        linuxaio.aio_busy(0.02)                 # n workers at once
    linuxaio.flush()
    for _ in range(200):
        linuxaio.aio_nop(None)
        linuxaio.flush()
    time.sleep(0.05)


def stat_fields(st):
    """Every named field of an os.stat_result (nanosecond times included)."""
    names = sorted(n for n in dir(os.stat_result) if n.startswith("st_"))
    return tuple((n, getattr(st, n)) for n in names)


# For child programs (run_python): teach(n, delay) shows the pool that
# requests block: n reads of pipes that a thread feeds `delay` seconds apart
# (off the CPU all that time, as a cold read waits for the device).
TEACH_BLOCKING = """
import linuxaio, os, threading, time
def teach(n, delay):
    pipes = [os.pipe() for _ in range(n)]
    for rfd, _ in pipes:
        linuxaio.aio_read(rfd, None, 1, bytearray(1), 0, None)
    def feed():
        for _, wfd in pipes:
            time.sleep(delay)
            os.write(wfd, b"x")
    t = threading.Thread(target=feed)
    t.start()
    linuxaio.flush()
    t.join()
    for p in pipes:
        os.close(p[0]); os.close(p[1])
"""


def run_python(code, timeout=30, env=None):
    """Run code in a fresh interpreter that imports the linuxaio under test.

    Returns (CompletedProcess, elapsed seconds); a hang becomes a test failure
    through subprocess.TimeoutExpired."""
    e = dict(os.environ)
    e["PYTHONPATH"] = LINUXAIO_HOME + os.pathsep + e.get("PYTHONPATH", "")
    if env:
        e.update(env)
    t0 = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=timeout, env=e)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the subprocess hung (killed after {timeout}s); "
                             f"stdout={exc.stdout!r} stderr={exc.stderr!r}") from None
    return proc, time.monotonic() - t0


def run_forked(child, timeout=20):
    """Run child() in a forked child; return its exit code (child() returns it).

    The child always leaves through os._exit; a child that hangs is killed
    and reported as a failure."""
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            import signal
            signal.alarm(timeout)   # default action of SIGALRM kills the child
            code = child()
        except BaseException:
            import traceback
            traceback.print_exc()
            code = 98
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout + 5
    while True:
        wpid, status = os.waitpid(pid, os.WNOHANG)
        if wpid:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            raise AssertionError("forked child hung")
        time.sleep(0.01)


def is_done(req):
    """Request.done: a method (asyncio style) or an attribute."""
    v = req.done
    return v() if callable(v) else v


def is_cancelled(req):
    """Request.cancelled: a method (asyncio style) or an attribute."""
    v = req.cancelled
    return v() if callable(v) else v


class Collector:
    """A callback that records each call's arguments."""

    def __init__(self):
        self.calls = []

    def __call__(self, *args):
        self.calls.append(args)

    @property
    def values(self):
        return [a[0] for a in self.calls]
