"""IO::AIO's control surface: priorities, poll limits, counters, threads, flush, reinit."""
import asyncio
import os
import select
import threading
import time

import pytest

import linuxaio
from linuxaio import os as aos
from aio_helpers import fd_count, run_python, wait_pending, wait_started, wait_until
from async_helpers import HeldWorker


def one_blocked_thread(directory):
    """A single worker thread, blocked in open() of a FIFO until the
    returned HeldWorker's release(): what is queued meanwhile stays queued
    however slow the machine (aio_busy's fixed time could run out first).
    The caller releases it before flush() and leaves its with-block."""
    linuxaio.max_parallel(1)
    wait_until(lambda: linuxaio.nthreads() <= 1, what="nthreads() <= 1")
    return HeldWorker(directory)


def start_threads(n, seconds=0.15):
    """Get n worker threads going (on demand) by keeping n of them busy."""
    linuxaio.min_parallel(n)
    for _ in range(n):
        linuxaio.aio_busy(seconds)
    wait_until(lambda: linuxaio.nthreads() >= n, what=f"nthreads() >= {n}")
    linuxaio.flush()


# ------------------------------------------------------------ priorities

def test_priorities_honoured_with_one_thread(tmp_path):
    order = []
    pris = [0, -4, 4, 2, -1, 3, 0, -4, 1, 4, -2, -3, 2, 0]
    with one_blocked_thread(tmp_path) as held:
        for i, p in enumerate(pris):
            linuxaio.aio_nop(lambda v, p=p, i=i: order.append((p, i)), pri=p)
        assert linuxaio.nready() == len(pris)
        held.release()
        linuxaio.flush()
    # higher priority first; within one priority, first come first served
    expect = sorted(((p, i) for i, p in enumerate(pris)), key=lambda t: (-t[0], t[1]))
    assert order == expect


def test_default_priority_is_zero(tmp_path):
    order = []
    with one_blocked_thread(tmp_path) as held:
        linuxaio.aio_nop(lambda v: order.append("low"), pri=-1)
        linuxaio.aio_nop(lambda v: order.append("default"))
        linuxaio.aio_nop(lambda v: order.append("zero"), pri=0)
        linuxaio.aio_nop(lambda v: order.append("high"), pri=1)
        held.release()
        linuxaio.flush()
    assert order == ["high", "default", "zero", "low"]


def test_priorities_across_operation_kinds(datafile, rfd, tmp_path):
    order = []
    with one_blocked_thread(tmp_path) as held:
        linuxaio.aio_stat(datafile[0], lambda v: order.append("stat"), pri=-3)
        linuxaio.aio_read(rfd, 0, 1, bytearray(1), 0, lambda v: order.append("read"), pri=3)
        linuxaio.aio_busy(0, lambda v: order.append("busy"), pri=1)
        linuxaio.aio_nop(lambda v: order.append("nop"), pri=-1)
        held.release()
        linuxaio.flush()
    assert order == ["read", "busy", "nop", "stat"]


# ------------------------------------------------------------ poll limits

def _readable():
    return bool(select.select([linuxaio.poll_fileno()], [], [], 0)[0])


def test_max_poll_reqs_honoured():
    got = []
    for _ in range(10):
        linuxaio.aio_nop(got.append)
    wait_pending(10)
    linuxaio.max_poll_reqs(3)
    assert linuxaio.poll_cb() == 3
    assert len(got) == 3 and linuxaio.nreqs() == 7
    assert _readable()            # the rest still wait; no re-arming needed
    assert linuxaio.poll_cb() == 3
    assert linuxaio.poll_cb() == 3
    assert linuxaio.poll_cb() == 1
    assert not _readable()
    assert linuxaio.poll_cb() == 0
    assert len(got) == 10


def test_max_poll_reqs_zero_means_no_limit():
    for _ in range(50):
        linuxaio.aio_nop()
    wait_pending(50)
    linuxaio.max_poll_reqs(5)
    linuxaio.max_poll_reqs(0)
    assert linuxaio.poll_cb() == 50


def test_max_poll_reqs_with_flush():
    got = []
    linuxaio.max_poll_reqs(2)
    for _ in range(9):
        linuxaio.aio_nop(got.append)
    linuxaio.flush()
    assert len(got) == 9


def test_max_poll_time_honoured():
    got = []

    def slow(v):
        got.append(v)
        time.sleep(0.02)

    for _ in range(40):
        linuxaio.aio_nop(slow)
    wait_pending(40)
    linuxaio.max_poll_time(0.05)
    n = linuxaio.poll_cb()
    # poll_cb looks at the clock after each callback and stops once 0.05 s
    # have gone by since it began: callbacks that sleep 0.02 s each leave
    # room for three at most (a slow machine makes it fewer, never more),
    # not the 40 (0.8 s) of the whole batch.  (A wall-clock bound on the
    # call was a loaded machine's to break.)
    assert 1 <= n <= 3, n
    assert _readable()
    calls = 1
    while linuxaio.nreqs():
        n += linuxaio.poll_cb()
        calls += 1
    assert n == 40 and len(got) == 40
    assert calls >= 3


POLL_CB_STOPPING_EARLY = r"""
import time, linuxaio

def handle_one_per_call(n):
    linuxaio.max_poll_time(1e-9)        # each poll_cb handles one result
    for _ in range(n):
        linuxaio.aio_nop(None)
    while linuxaio.npending() < n:
        time.sleep(0.001)
    t0 = time.process_time()            # CPU time: the machine may be busy
    while linuxaio.nreqs():
        linuxaio.poll_cb()
    return time.process_time() - t0

small, big = [], []
for _ in range(3):
    small.append(handle_one_per_call(2500))
    big.append(handle_one_per_call(20000))
print(min(big) / min(small))
"""


def test_poll_cb_stopping_early_costs_what_it_handles_not_what_waits():
    """A poll_cb that stops early (max_poll_time, a loop's drain budget) takes
    and gives back only a chunk of the results, not all that wait: draining
    8x the results one per call takes about 8x as long (quadratic: 64x).
    Measured 3.8-5.2 for 4x (cache misses grow with the backlog), so 4x
    against a bar of 6 failed now and then: 8x against 20 keeps the gap."""
    proc, _ = run_python(POLL_CB_STOPPING_EARLY, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert float(proc.stdout) < 20, proc.stdout


def test_max_poll_time_zero_means_no_limit():
    for _ in range(20):
        linuxaio.aio_nop(lambda v: time.sleep(0.002))
    wait_pending(20)
    linuxaio.max_poll_time(0.001)
    linuxaio.max_poll_time(0)
    assert linuxaio.poll_cb() == 20


# ------------------------------------------------------------ max_outstanding

def test_max_outstanding_makes_poll_cb_block():
    linuxaio.max_outstanding(3)
    got = []
    t0 = time.monotonic()         # before the submissions: none ends before t0 + 0.15
    for _ in range(6):
        linuxaio.aio_busy(0.15, got.append)
    assert linuxaio.nreqs() == 6
    linuxaio.poll_cb()            # blocks while nreqs() >= 3
    assert linuxaio.nreqs() < 3
    assert time.monotonic() - t0 >= 0.15
    assert len(got) >= 4


def test_max_outstanding_lets_poll_cb_return_below_the_mark():
    linuxaio.max_outstanding(10)
    r, w = os.pipe()
    try:
        # held in a worker until the pipe gets data: a poll_cb that waited
        # for it would wait until the alarm (seconds), not return at once
        linuxaio.aio_read(r, None, 1, bytearray(1), 0, None)
        assert linuxaio.poll_cb() == 0      # (no time bound: a wait is the alarm's)
        assert linuxaio.nreqs() == 1
    finally:
        os.write(w, b"x")
        linuxaio.flush()
        os.close(r)
        os.close(w)


def test_max_outstanding_with_nothing_able_to_run_raises():
    linuxaio.max_outstanding(2)
    linuxaio.max_parallel(0)
    linuxaio.aio_nop()
    linuxaio.aio_nop()
    with pytest.raises(RuntimeError):
        linuxaio.poll_cb()
    linuxaio.min_parallel(4)


# ------------------------------------------------------------ counters

def test_counters_follow_a_request_through_the_engine():
    assert (linuxaio.nreqs(), linuxaio.nready(), linuxaio.npending()) == (0, 0, 0)
    linuxaio.max_parallel(0)
    for _ in range(5):
        linuxaio.aio_nop()
    assert (linuxaio.nreqs(), linuxaio.nready(), linuxaio.npending()) == (5, 5, 0)
    linuxaio.min_parallel(2)
    wait_pending(5)
    assert (linuxaio.nreqs(), linuxaio.nready(), linuxaio.npending()) == (5, 0, 5)
    linuxaio.max_poll_reqs(2)
    linuxaio.poll_cb()
    assert (linuxaio.nreqs(), linuxaio.nready(), linuxaio.npending()) == (3, 0, 3)
    linuxaio.max_poll_reqs(0)
    linuxaio.poll_cb()
    assert (linuxaio.nreqs(), linuxaio.nready(), linuxaio.npending()) == (0, 0, 0)


def test_npending_counts_a_batch_interrupted_by_an_exception():
    for i in range(6):
        linuxaio.aio_nop((lambda v: 1 / 0) if i == 0 else None)
    wait_pending(6)
    with pytest.raises(ZeroDivisionError):
        linuxaio.poll_cb()
    assert linuxaio.npending() == linuxaio.nreqs()
    linuxaio.flush()
    assert (linuxaio.nreqs(), linuxaio.npending()) == (0, 0)


def test_npending_seen_from_a_callback():
    seen = []
    for _ in range(4):
        linuxaio.aio_nop(lambda v: seen.append((linuxaio.nreqs(), linuxaio.npending())))
    wait_pending(4)
    linuxaio.poll_cb()
    # inside a callback the request itself is no longer counted
    assert seen == [(3, 3), (2, 2), (1, 1), (0, 0)]


def test_nthreads_grows_on_demand_up_to_the_limit():
    linuxaio.max_parallel(0)
    wait_until(lambda: linuxaio.nthreads() == 0, what="no threads")
    linuxaio.min_parallel(3)
    assert linuxaio.nthreads() == 0          # threads start on demand
    for _ in range(6):
        linuxaio.aio_busy(0.1)
    wait_until(lambda: linuxaio.nthreads() == 3, what="3 threads")
    time.sleep(0.05)
    assert linuxaio.nthreads() == 3
    linuxaio.flush()


def test_counters_never_negative_after_cancel_and_reinit():
    linuxaio.max_parallel(0)
    reqs = [linuxaio.aio_nop() for _ in range(5)]
    for r in reqs:
        r.cancel()
        r.cancel()
    linuxaio.reinit()
    linuxaio.poll_cb()
    for r in reqs:
        r.cancel()
    assert (linuxaio.nreqs(), linuxaio.nready(), linuxaio.npending()) == (0, 0, 0)
    linuxaio.min_parallel(4)
    linuxaio.flush()
    assert (linuxaio.nreqs(), linuxaio.nready(), linuxaio.npending()) == (0, 0, 0)


# ------------------------------------------------------------ threads

def test_idle_threads_exit():
    start_threads(4)
    assert linuxaio.nthreads() >= 4
    linuxaio.max_idle(0)
    # Before the call: a new timeout wakes the sleepers, which start their
    # idle time anew then, so none leaves before t0 + 0.2 s.  (Taken after
    # the call, a stall of the test thread there ate into the margin.)
    t0 = time.monotonic()
    linuxaio.idle_timeout(0.2)
    wait_until(lambda: linuxaio.nthreads() == 0, timeout=5, what="idle threads to exit")
    assert time.monotonic() - t0 >= 0.2
    got = []
    linuxaio.aio_nop(got.append)     # and threads come back on demand
    linuxaio.flush()
    assert got == [0]


def test_idle_threads_beyond_max_idle_exit():
    start_threads(4)
    linuxaio.max_idle(2)
    linuxaio.idle_timeout(0.2)
    wait_until(lambda: linuxaio.nthreads() == 2, timeout=5, what="2 idle threads left")
    time.sleep(0.5)
    assert linuxaio.nthreads() == 2


def test_idle_threads_stay_within_the_timeout():
    start_threads(3)
    linuxaio.max_idle(0)
    linuxaio.idle_timeout(5)
    time.sleep(0.3)
    assert linuxaio.nthreads() == 3


def test_max_parallel_lowers_nthreads():
    start_threads(4)
    linuxaio.max_parallel(1)
    wait_until(lambda: linuxaio.nthreads() == 1, timeout=5, what="nthreads() == 1")
    got = []
    t0 = time.monotonic()                     # before the submissions
    for _ in range(4):
        linuxaio.aio_busy(0.05, got.append)
    linuxaio.flush()
    assert time.monotonic() - t0 >= 0.2       # one at a time
    assert got == [0] * 4
    assert linuxaio.nthreads() <= 1


def test_max_parallel_stops_extra_threads_once_they_are_done():
    start_threads(4)
    for _ in range(4):
        linuxaio.aio_busy(0.2)
    wait_started()
    linuxaio.max_parallel(2)
    linuxaio.flush()
    wait_until(lambda: linuxaio.nthreads() <= 2, timeout=5, what="nthreads() <= 2")


def test_min_parallel_runs_requests_in_parallel():
    linuxaio.max_parallel(1)
    linuxaio.min_parallel(4)
    pipes = [os.pipe() for _ in range(4)]
    try:
        # Four reads of empty pipes, each held in the kernel until its pipe
        # gets data: none can finish first, so all four running (none left
        # queued) means four at once.  (Timing four aio_busy calls was a
        # loaded machine's to upset.)
        for r, _ in pipes:
            linuxaio.aio_read(r, None, 1, bytearray(1), 0, None)
        wait_until(lambda: linuxaio.nready() == 0, timeout=10, what="all four reads to start")
        assert linuxaio.nreqs() == 4 and linuxaio.npending() == 0
    finally:
        for _, w in pipes:
            os.write(w, b"x")
        linuxaio.flush()
        for r, w in pipes:
            os.close(r)
            os.close(w)


def test_max_parallel_zero_queues_until_raised():
    linuxaio.max_parallel(0)
    wait_until(lambda: linuxaio.nthreads() == 0, what="no threads")
    got = []
    for _ in range(3):
        linuxaio.aio_nop(got.append)
    time.sleep(0.1)
    assert linuxaio.poll_cb() == 0
    assert got == [] and linuxaio.nready() == 3
    linuxaio.min_parallel(1)
    linuxaio.flush()
    assert got == [0, 0, 0]


def test_flush_with_max_parallel_zero_raises_instead_of_hanging():
    linuxaio.max_parallel(0)
    linuxaio.aio_nop()
    # (no time bound: a hang is the test's alarm's to report)
    with pytest.raises(RuntimeError):
        linuxaio.flush()
    with pytest.raises(RuntimeError):
        linuxaio.poll_wait()
    with pytest.raises(RuntimeError):
        linuxaio.poll()
    assert linuxaio.nreqs() == 1
    linuxaio.min_parallel(4)
    linuxaio.flush()
    assert linuxaio.nreqs() == 0


def test_under_max_parallel_zero_an_await_waits_for_the_limit_while_flush_raises(engine_only):
    """The two APIs part under max_parallel(0): flush() has nothing that
    could finish and raises, while a task awaiting a request waits (code in
    its loop may raise the limit yet), and completes once the limit rises."""
    async def main():
        linuxaio.max_parallel(0)
        task = asyncio.ensure_future(aos.stat("/"))
        await asyncio.sleep(0.05)            # the task has submitted its request
        assert not task.done() and linuxaio.nready() == 1
        got = []
        linuxaio.aio_nop(got.append)
        with pytest.raises(RuntimeError, match="none can finish"):
            linuxaio.flush()
        await asyncio.sleep(0.05)
        assert not task.done() and linuxaio.nready() == 2
        linuxaio.min_parallel(4)
        st = await asyncio.wait_for(task, 10)
        assert (st.st_dev, st.st_ino) == (os.stat("/").st_dev, os.stat("/").st_ino)
        linuxaio.flush()
        assert got == [0] and linuxaio.nreqs() == 0

    asyncio.run(main())


def _stop_all_threads():
    linuxaio.max_parallel(0)
    wait_until(lambda: linuxaio.nthreads() == 0, what="no threads")


def test_flush_never_raises_while_requests_can_run():
    """The "none can finish" check must not fire while a worker is taking a
    request from the queue (between "ready" and "running").  Workers on one
    CPU and the submitting thread on another make that moment easy to hit."""
    cpus = sorted(os.sched_getaffinity(0))
    saved = set(cpus)
    errors = n = 0
    try:
        if len(cpus) >= 2:
            _stop_all_threads()
            os.sched_setaffinity(0, {cpus[1]})    # workers inherit this
            linuxaio.min_parallel(2)
            for _ in range(2):
                linuxaio.aio_busy(0.05)
            linuxaio.flush()
            os.sched_setaffinity(0, {cpus[0]})
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.0:
            linuxaio.aio_nop()
            n += 1
            try:
                linuxaio.flush()
            except RuntimeError:
                errors += 1
                while linuxaio.nreqs():     # it does finish after all
                    try:
                        linuxaio.flush()
                    except RuntimeError:
                        pass
    finally:
        _stop_all_threads()                 # no worker stays pinned
        os.sched_setaffinity(0, saved)
        linuxaio.min_parallel(4)
    assert errors == 0, f"flush() raised RuntimeError {errors} times in {n} flushes"


def test_flush_with_max_parallel_zero_raises_with_a_group_and_running_work():
    g = linuxaio.aio_group()
    g.add(linuxaio.aio_busy(0.1))
    wait_started()
    linuxaio.max_parallel(0)
    g.add(linuxaio.aio_nop())
    with pytest.raises(RuntimeError):
        linuxaio.flush()
    linuxaio.min_parallel(4)


# ------------------------------------------------------------ poll, poll_wait, flush

def test_poll_wait_returns_at_once_with_nothing_outstanding():
    assert linuxaio.poll_wait() is None   # (a wait would be for ever: the alarm's)


def test_poll_wait_waits_for_a_result_and_runs_no_callback():
    got = []
    t0 = time.monotonic()                 # before the submission: it ends after t0 + 0.1
    linuxaio.aio_busy(0.1, got.append)
    linuxaio.poll_wait()
    assert time.monotonic() - t0 >= 0.1
    assert got == [] and linuxaio.npending() == 1
    assert linuxaio.poll_cb() == 1 and got == [0]


def test_poll_waits_then_handles():
    got = []
    linuxaio.aio_busy(0.05, got.append)
    assert linuxaio.poll() == 1
    assert got == [0]


def test_flush_waits_for_everything():
    got = []
    for s in (0.05, 0.1, 0.0, 0.15):
        linuxaio.aio_busy(s, got.append)
    linuxaio.flush()
    assert got == [0] * 4 and linuxaio.nreqs() == 0


FLUSH_IN_CALLBACK = r"""
import linuxaio, time
got = []

def cb(v):
    linuxaio.aio_nop(got.append)
    linuxaio.flush()
    got.append("inner flush done")

for _ in range(5):
    linuxaio.aio_nop(cb)
while linuxaio.npending() < 5:
    time.sleep(0.001)
try:
    linuxaio.flush()
except Exception as e:
    print("flush raised", repr(e))
print("inner", got.count("inner flush done"), "zeros", got.count(0),
      "nreqs", linuxaio.nreqs(), "npending", linuxaio.npending())
"""


def test_flush_inside_a_callback():
    """A callback may flush: the requests of its own batch still get delivered
    and the engine's counters stay right.  (In a subprocess: a failure here
    can leave the engine unusable.)"""
    proc, _ = run_python(FLUSH_IN_CALLBACK, timeout=10)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "inner 5 zeros 5 nreqs 0 npending 0", proc.stdout


WAIT_IN_CALLBACK = r"""
import linuxaio, sys, time
got = []

def cb(v):
    got.append(v)
    if len(got) == 1:                   # the other two are in poll_cb's hand
        getattr(linuxaio, sys.argv[1])()
        got.append("returned")

for _ in range(3):
    linuxaio.aio_nop(cb)
while linuxaio.npending() < 3:
    time.sleep(0.001)
linuxaio.poll_cb()
linuxaio.flush()
print(got.count(0), got.count("returned"), linuxaio.nreqs(), linuxaio.npending())
"""


@pytest.mark.parametrize("wait", ["poll_wait", "poll", "flush"])
def test_wait_in_a_callback_counts_the_results_its_poll_cb_holds(wait):
    """poll_wait(), poll() or flush() called by a callback while nothing is in
    flight but the rest of that poll_cb's batch: those results are ready, so
    it returns (poll and flush handle them) instead of waiting for ever."""
    proc, _ = run_python(WAIT_IN_CALLBACK.replace("sys.argv[1]", repr(wait)), timeout=10)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["3", "1", "0", "0"], proc.stdout


class Interrupted(Exception):
    pass


def _interrupt_flush(send):
    """flush() with a request outstanding that cannot finish by itself (a
    read of an empty pipe, held in the kernel until the pipe gets data):
    only the signal handler can end that flush().  send() raises SIGUSR1
    soon.  A flush() that never looked would never return (the read is
    held): being interrupted at all is the test, with no bound on how soon,
    which a loaded machine could break.  (An aio_busy(1.0) there could run
    out first on a loaded machine.)"""
    import signal

    def handler(signum, frame):
        raise Interrupted

    old = signal.signal(signal.SIGUSR1, handler)
    r, w = os.pipe()
    try:
        linuxaio.aio_read(r, None, 1, bytearray(1), 0, None)
        wait_started()
        send()
        with pytest.raises(Interrupted):
            linuxaio.flush()
        assert linuxaio.nreqs() == 1   # the request is still there
    finally:
        signal.signal(signal.SIGUSR1, old)
        os.write(w, b"x")
        linuxaio.flush()
        os.close(r)
        os.close(w)


def test_flush_is_interruptible_by_a_signal_to_the_main_thread():
    import signal
    main = threading.get_ident()
    timer = threading.Timer(0.15, signal.pthread_kill, (main, signal.SIGUSR1))
    _interrupt_flush(timer.start)   # the signal after 0.15 s; flush() looks every 0.1 s
    timer.join()


def test_flush_is_interruptible_by_a_signal_another_thread_receives():
    """A process-directed signal (Ctrl-C, kill) may land on any thread that
    does not block it; Python then runs the handler in the main thread as soon
    as the main thread checks for signals.  flush() must check now and then."""
    import signal
    go = threading.Event()
    helper = threading.Thread(target=lambda: go.wait(5) and time.sleep(0.15)
                              or os.kill(os.getpid(), signal.SIGUSR1))
    helper.start()                      # starts with SIGUSR1 unblocked
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})   # so it lands on helper
    try:
        _interrupt_flush(go.set)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGUSR1})
        helper.join(5)


# ------------------------------------------------------------ reinit

def test_reinit_drops_everything(datafile):
    fail = lambda v: pytest.fail(f"callback after reinit: {v!r}")  # noqa: E731
    fileno = linuxaio.poll_fileno()
    base = fd_count()
    opened = linuxaio.aio_open(datafile[0], os.O_RDONLY, 0, fail)   # completes, not delivered
    wait_pending(1)
    running = linuxaio.aio_busy(0.1, fail)
    wait_started()
    g = linuxaio.aio_group(fail)
    linuxaio.max_parallel(0)
    queued = [linuxaio.aio_nop(fail) for _ in range(10)]
    g.add(*queued[:3])
    assert linuxaio.nreqs() == 13
    linuxaio.reinit()
    assert (linuxaio.nreqs(), linuxaio.nready(), linuxaio.npending()) == (0, 0, 0)
    assert linuxaio.poll_cb() == 0
    assert linuxaio.poll_fileno() == fileno
    assert not select.select([fileno], [], [], 0)[0]
    assert fd_count() == base            # the undelivered open's fd was closed
    for r in [opened, running, g] + queued:
        r.cancel()                       # harmless now
    linuxaio.min_parallel(4)
    got = []
    linuxaio.aio_nop(got.append)
    linuxaio.aio_stat(datafile[0], got.append)
    linuxaio.flush()
    assert got[0] == 0 or got[1] == 0
    assert linuxaio.nreqs() == 0


def test_reinit_with_nothing_outstanding():
    linuxaio.reinit()
    linuxaio.reinit()
    got = []
    linuxaio.aio_nop(got.append)
    linuxaio.flush()
    assert got == [0]


# For a child interpreter: wait until a worker thread is inside syscall nr
# (x86-64 numbers: read 0, openat 257), so that reinit() finds it blocked
# there, not still queued or about to start (a loaded machine).
IN_SYSCALL = r"""
import glob, threading, time
def wait_in_syscall(nr, timeout=10):
    me = str(threading.get_native_id())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in glob.glob("/proc/self/task/*/syscall"):
            if p.split("/")[-2] == me:
                continue
            try:
                with open(p) as f:
                    if f.read().split()[0] == str(nr):
                        return
            except (OSError, IndexError):
                pass
        time.sleep(0.005)
    raise AssertionError("no worker got into syscall %d" % nr)
"""
X86_64 = pytest.mark.skipif(os.uname().machine != "x86_64", reason="x86-64 syscall numbers")


@X86_64
def test_reinit_returns_promptly_with_a_worker_blocked_on_an_empty_pipe():
    code = IN_SYSCALL + r"""
import os, select, time, linuxaio
r, w = os.pipe()
got = []
linuxaio.aio_read(r, None, 10, bytearray(10), 0, got.append)
wait_in_syscall(0)                    # a worker is in read(2) now
t0 = time.monotonic()
linuxaio.reinit()
elapsed = time.monotonic() - t0
assert elapsed < 10, elapsed          # the grace is 0.1 s; never returning, the failure
assert (linuxaio.nreqs(), linuxaio.nready(), linuxaio.npending()) == (0, 0, 0)
assert linuxaio.nthreads() == 0       # the stuck one is no longer counted
linuxaio.aio_nop(got.append)          # fresh workers
linuxaio.flush()
assert got == [0], got
print("ok")
"""
    proc, _ = run_python(code, timeout=20)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr


@X86_64
def test_reinit_drops_the_late_result_of_an_abandoned_read():
    code = IN_SYSCALL + r"""
import gc, os, select, time, linuxaio
r, w = os.pipe()
got = []
req = linuxaio.aio_read(r, None, 4, bytearray(4), 0, got.append)
wait_in_syscall(0)
linuxaio.reinit()
assert req.done() and req.cancelled()
del req
gc.collect()                          # the caller's references are gone
os.write(w, b"late")                  # the abandoned read returns now
deadline = time.monotonic() + 5       # and its thread exits once that is handled
while len(os.listdir("/proc/self/task")) > 1 and time.monotonic() < deadline:
    time.sleep(0.01)
assert len(os.listdir("/proc/self/task")) == 1
assert not select.select([linuxaio.poll_fileno()], [], [], 0)[0]
assert (linuxaio.npending(), linuxaio.poll_cb(), linuxaio.nreqs()) == (0, 0, 0)
assert got == []
linuxaio.aio_nop(got.append)
linuxaio.flush()
assert got == [0], got
print("ok")
"""
    proc, _ = run_python(code, timeout=20)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr


@X86_64
def test_reinit_closes_the_late_fd_of_an_abandoned_open(tmp_path):
    code = IN_SYSCALL + r"""
import os, time, linuxaio
fifo = %r
os.mkfifo(fifo)
base = len(os.listdir("/proc/self/fd"))
got = []
linuxaio.aio_open(fifo, os.O_RDONLY, 0, got.append)   # blocks until a writer comes
wait_in_syscall(257)
linuxaio.reinit()
wfd = os.open(fifo, os.O_WRONLY)      # the abandoned open returns now
# The abandoned thread exits once it has handled its late result (and its
# open may return after ours does): wait for that, then count.
deadline = time.monotonic() + 5
while len(os.listdir("/proc/self/task")) > 1 and time.monotonic() < deadline:
    time.sleep(0.01)
assert len(os.listdir("/proc/self/task")) == 1
assert len(os.listdir("/proc/self/fd")) == base + 1   # ours only: its fd was closed
linuxaio.poll_cb()
assert got == [], got
print("ok")
""" % str(tmp_path / "fifo")
    proc, _ = run_python(code, timeout=20)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr


@pytest.mark.aio_timeout(120)
def test_nreqs_counts_exactly_when_reinit_runs_while_other_threads_submit():
    code = r"""
import threading, time, linuxaio
stop = threading.Event()
reqs = []
negative = []
def submitter():
    while not stop.is_set():
        reqs.append(linuxaio.aio_busy(0.0005))
        n = linuxaio.nreqs()
        if n < 0:
            negative.append(n)
        elif n > 5000:
            # A bounded backlog: unbounded, 3 threads queued ~800,000
            # requests, each reinit() freed tens of thousands, and the
            # final flush ran ~100,000 busy requests (10-40 s a run on a
            # loaded machine, past the test's limit).  A burst of 5000
            # after each reinit() still overlaps the next one.
            time.sleep(0.0005)
threads = [threading.Thread(target=submitter) for _ in range(3)]
for t in threads:
    t.start()
for _ in range(40):
    time.sleep(0.005)
    linuxaio.reinit()
    if linuxaio.nreqs() < 0:
        negative.append(linuxaio.nreqs())
time.sleep(0.005)                     # some submitted since the last reinit()
stop.set()
for t in threads:
    t.join()
assert not negative, negative
outstanding = sum(not r.done() for r in reqs)
assert linuxaio.nreqs() == outstanding, (linuxaio.nreqs(), outstanding)
linuxaio.flush()
assert linuxaio.nreqs() == 0 and all(r.done() for r in reqs)
print("ok")
"""
    for _ in range(3):
        proc, _ = run_python(code, timeout=60)
        assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr


# ------------------------------------------------------------ no worker thread

# A child interpreter in which no thread can be created: a seccomp filter
# makes clone() and clone3() fail with EAGAIN, as pthread_create fails at
# RLIMIT_NPROC or threads-max (root ignores RLIMIT_NPROC: hence the filter).
NO_THREADS = r"""
import ctypes, errno, struct
def no_more_threads():
    def insn(code, k, jt=0, jf=0):
        return struct.pack("HBBI", code, jt, jf, k)
    allow, fail = 0x7fff0000, 0x00050000 | errno.EAGAIN    # SECCOMP_RET_ALLOW, _ERRNO
    prog = (insn(0x20, 0)                                  # load the syscall number
            + insn(0x15, 435, 2, 0) + insn(0x15, 56, 1, 0)  # clone3, clone (x86-64)
            + insn(0x06, allow) + insn(0x06, fail))
    buf = ctypes.create_string_buffer(prog)
    class Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]
    fp = Fprog(len(prog) // 8, ctypes.addressof(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(38, 1, 0, 0, 0) == 0                 # PR_SET_NO_NEW_PRIVS
    assert libc.prctl(22, 2, ctypes.byref(fp), 0, 0) == 0  # PR_SET_SECCOMP, filter
"""


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the filter knows x86-64 numbers")
def test_no_worker_thread_can_start_fails_the_request_with_runtimeerror():
    code = NO_THREADS + r"""
import linuxaio
no_more_threads()
got = []
linuxaio.aio_nop(got.append)
linuxaio.aio_stat("/", got.append)
linuxaio.flush()                      # returns: nothing waits for a thread
assert len(got) == 2 and all(isinstance(v, RuntimeError) for v in got), got
assert "can't start a worker thread" in str(got[0]), got
assert linuxaio.nreqs() == 0
print("ok")
"""
    proc, _ = run_python(code, timeout=20)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the filter knows x86-64 numbers")
def test_no_worker_thread_can_start_fails_an_await_with_runtimeerror():
    code = NO_THREADS + r"""
import asyncio, linuxaio
from linuxaio import os as aos
linuxaio.inline(False)                # a cached stat would complete inline, no thread needed
async def main():
    no_more_threads()                 # after the loop's own set-up
    try:
        await aos.stat("/")
    except RuntimeError as e:
        return e
print("raised" if isinstance(asyncio.run(main()), RuntimeError) else "no error")
"""
    proc, _ = run_python(code, timeout=20)
    assert proc.returncode == 0 and "raised" in proc.stdout, proc.stderr


# ------------------------------------------------------------ max_outstanding, bounded

def test_max_outstanding_poll_cb_returns_while_callbacks_resubmit():
    code = r"""
import time, linuxaio
linuxaio.max_outstanding(2)
going = True
def again(v):
    if going:
        linuxaio.aio_nop(again)
for _ in range(4):
    linuxaio.aio_nop(again)
handled = linuxaio.poll_cb()          # 4 outstanding at the call: 3 results get below 2
going = False                         # (one that never returned: the timeout below)
linuxaio.flush()
assert handled >= 3, handled
print("ok")
"""
    proc, _ = run_python(code, timeout=20)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr


@X86_64
def test_a_late_result_polled_while_reinit_waits_for_the_gil_is_not_freed_under_it():
    """reinit() in a thread abandons a stuck read and then waits for the GIL;
    the read comes back meanwhile and the main thread's poll_cb() must not
    free the request reinit() is about to hold (a use after free: a crash
    here now and then, an ASan report under tools/sanitize.sh every time)."""
    code = IN_SYSCALL + r"""
import os, subprocess, sys, threading, time, linuxaio
sys.setswitchinterval(5.0)            # the main thread keeps the GIL while it spins
r, w = os.pipe()
linuxaio.aio_read(r, None, 10, bytearray(10), 0, lambda v: None)   # no reference kept
wait_in_syscall(0)
late = subprocess.Popen(["sh", "-c", "sleep 0.3; printf x"], stdout=w)
A = threading.Thread(target=linuxaio.reinit)
A.start()
time.sleep(0.02)                      # A is in reinit, the GIL released
t0 = time.monotonic()
while time.monotonic() - t0 < 0.6:   # abandoned at ~0.1 s, back at ~0.3 s
    pass
linuxaio.poll_cb()
A.join()
late.wait()
assert linuxaio.nreqs() == 0
linuxaio.poll_cb()
print("ok")
"""
    proc, _ = run_python(code, timeout=30)
    assert proc.returncode == 0 and "ok" in proc.stdout, (proc.returncode, proc.stderr)


def test_requests_submitted_while_reinit_abandons_a_stuck_worker_all_run():
    """Requests other threads submit while reinit() stops and abandons the
    workers (one blocked on an empty pipe) are dropped or run: none is left
    queued with no worker to take it."""
    code = r"""
import os, threading, time, linuxaio
for rnd in range(5):
    r, w = os.pipe()
    linuxaio.aio_read(r, None, 1, bytearray(1), 0, lambda v: None)
    time.sleep(0.02)
    stop, got = False, []
    def submitter():
        while not stop:
            linuxaio.aio_nop(got.append)
            time.sleep(0.0005)
    t = threading.Thread(target=submitter)
    t.start()
    linuxaio.reinit()
    time.sleep(0.02)
    stop = True
    t.join()
    linuxaio.flush()                  # everything still counted finishes
    assert linuxaio.nreqs() == 0 and linuxaio.nready() == 0
    os.close(w); os.close(r)
print("ok")
"""
    proc, _ = run_python(code, timeout=30)
    assert proc.returncode == 0 and "ok" in proc.stdout, (proc.returncode, proc.stderr)
