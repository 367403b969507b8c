"""Threads, fork and interpreter exit."""
import os
import signal
import textwrap
import threading
import time

import pytest

import linuxaio
from aio_helpers import run_forked, run_python, stat_fields, wait_started, wait_until


# ------------------------------------------------------------ threads

@pytest.mark.aio_timeout(60)
def test_16_threads_submitting_at_once(datafile):
    path, data = datafile
    nthreads, per_thread = 16, 400
    barrier = threading.Barrier(nthreads + 1)
    results = []          # list.append is atomic under the GIL
    errors = []
    no_atime = lambda st: [f for f in stat_fields(st) if "atime" not in f[0]]  # noqa: E731
    st_expect = no_atime(os.stat(path))    # reads below may touch the atime

    def submitter(t):
        try:
            fd = os.open(path, os.O_RDONLY)
            barrier.wait(10)
            for i in range(per_thread):
                kind = i % 4
                if kind == 0:
                    linuxaio.aio_nop(lambda v, t=t, i=i: results.append((t, i, v == 0)))
                elif kind == 1:
                    off = (t * 997 + i * 131) % (len(data) - 256)
                    buf = bytearray(256)
                    linuxaio.aio_read(fd, off, 256, buf, 0,
                                      lambda n, t=t, i=i, b=buf, o=off:
                                      results.append((t, i, n == 256 and bytes(b) == data[o:o + 256])))
                elif kind == 2:
                    linuxaio.aio_stat(path, lambda st, t=t, i=i:
                                      results.append((t, i, no_atime(st) == st_expect)))
                else:
                    linuxaio.aio_stat(str(path) + f".missing{t}",
                                      lambda e, t=t, i=i: results.append((t, i, isinstance(e, FileNotFoundError))))
            return fd
        except BaseException as e:   # pragma: no cover - reported below
            errors.append(e)

    fds = []
    threads = [threading.Thread(target=lambda t=t: fds.append(submitter(t))) for t in range(nthreads)]
    for th in threads:
        th.start()
    barrier.wait(10)
    # the main thread delivers while the others submit
    deadline = time.monotonic() + 40
    while any(th.is_alive() for th in threads) or linuxaio.nreqs():
        assert time.monotonic() < deadline, "requests did not all finish"
        linuxaio.poll_cb()
        time.sleep(0.0005)
    for th in threads:
        th.join()
    for fd in fds:
        if fd is not None:
            os.close(fd)
    assert not errors
    assert len(results) == nthreads * per_thread
    assert len(set((t, i) for t, i, _ in results)) == nthreads * per_thread   # each exactly once
    bad = sorted((t, i, i % 4) for t, i, ok in results if not ok)
    assert not bad, f"{len(bad)} wrong results (thread, index, kind): {bad[:10]}"
    assert (linuxaio.nreqs(), linuxaio.nready(), linuxaio.npending()) == (0, 0, 0)


def test_16_threads_each_flushing_their_own(datafile):
    """Submission and delivery from many threads: every callback runs exactly once."""
    counts = [0] * 16
    lock = threading.Lock()
    errors = []

    def worker(t):
        try:
            for _ in range(20):
                for _ in range(10):
                    linuxaio.aio_nop(lambda v, t=t: counts.__setitem__(t, counts[t] + 1))
                linuxaio.flush()
        except BaseException as e:
            with lock:
                errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(40)
    assert not any(th.is_alive() for th in threads)
    linuxaio.flush()
    assert not errors, errors[:3]
    assert sum(counts) == 16 * 200


CONCURRENT_POLL = r"""
import linuxaio, threading, time
N, T = 300, 4
count = [0]

def cb(v):
    count[0] += 1
    time.sleep(0.0005)          # lets the other pollers in

def worker():
    for i in range(N):
        linuxaio.aio_nop(cb)
        if i % 10 == 0:
            linuxaio.poll_cb()
    while linuxaio.nreqs():
        linuxaio.poll_wait()
        linuxaio.poll_cb()

threads = [threading.Thread(target=worker) for _ in range(T)]
for t in threads: t.start()
for t in threads: t.join()
print("count", count[0], "nreqs", linuxaio.nreqs(), "npending", linuxaio.npending(),
      "nready", linuxaio.nready())
linuxaio.max_parallel(0)
linuxaio.aio_nop()
try:
    linuxaio.flush()
    print("flush returned")
except RuntimeError:
    print("flush raised")
"""


def test_concurrent_poll_cb_keeps_counters_right():
    """Callbacks run in whichever thread calls poll_cb, and several threads may
    do so at once: nothing is lost and the counters stay right (in a subprocess:
    broken counters could leave the engine hanging)."""
    proc, _ = run_python(CONCURRENT_POLL, timeout=30)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0] == "count 1200 nreqs 0 npending 0 nready 0", proc.stdout
    assert lines[1] == "flush raised"


def test_callbacks_run_in_the_thread_that_polls():
    seen = []
    for _ in range(5):
        linuxaio.aio_nop(lambda v: seen.append(threading.get_ident()))
    t = threading.Thread(target=linuxaio.flush)
    t.start()
    t.join(10)
    assert not t.is_alive()
    assert len(seen) == 5 and set(seen) == {t.ident}


def test_workers_are_invisible_to_threading():
    before = threading.active_count()
    for _ in range(8):
        linuxaio.aio_busy(0.05)
    wait_until(lambda: linuxaio.nthreads() >= 2, what="workers")
    assert threading.active_count() == before
    linuxaio.flush()


def test_threads_survive_the_thread_that_called_min_parallel():
    def configure():
        linuxaio.min_parallel(6)
        for _ in range(6):
            linuxaio.aio_busy(0.1)

    t = threading.Thread(target=configure)
    t.start()
    t.join(10)
    wait_until(lambda: linuxaio.nthreads() >= 6, what="6 workers")
    assert linuxaio.nthreads() >= 6       # not killed with the thread that made them
    got = []
    linuxaio.aio_nop(got.append)
    linuxaio.flush()
    assert got == [0]


def _blocks_common_signals(tid):
    with open(f"/proc/self/task/{tid}/status") as f:
        blk = int(next(line for line in f if line.startswith("SigBlk:")).split()[1], 16)
    wanted = [signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM,
              signal.SIGCHLD, signal.SIGPIPE, signal.SIGHUP]
    return all(blk & (1 << (s - 1)) for s in wanted)


def _comm(tid):
    try:
        with open(f"/proc/self/task/{tid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def test_workers_block_all_signals():
    """Worker threads block every signal: process-directed signals land on
    Python's threads, whose handlers Python runs in the main thread."""
    for _ in range(4):
        linuxaio.aio_busy(0.2)
    wait_started()
    assert linuxaio.nthreads() == 4
    tasks = os.listdir("/proc/self/task")
    # libuv's own pool (uvloop's getaddrinfo, in an earlier test: the vendored
    # aiofiles suite runs on uvloop) is another library's threads: not counted
    tasks = [t for t in tasks if _comm(t) != "libuv-worker"]
    unblocked = [t for t in tasks if not _blocks_common_signals(t)]
    # Python threads (and only they) take signals; the workers block them all
    assert len(unblocked) == threading.active_count()
    assert len(tasks) - len(unblocked) >= 4
    hits = []
    old = signal.signal(signal.SIGUSR2, lambda s, f: hits.append(threading.get_ident()))
    try:
        for _ in range(20):
            os.kill(os.getpid(), signal.SIGUSR2)
        linuxaio.flush()
        wait_until(lambda: len(hits) > 0, what="handler")
    finally:
        signal.signal(signal.SIGUSR2, old)


# ------------------------------------------------------------ fork

def test_fork_child_gets_a_fresh_engine():
    parent_got = []
    linuxaio.max_parallel(4)
    for _ in range(4):
        linuxaio.aio_busy(0.2, parent_got.append)
    wait_started()                             # running, in the workers' hands
    linuxaio.max_parallel(0)
    for _ in range(50):
        linuxaio.aio_nop(parent_got.append)    # queued, not running
    wait_until(lambda: linuxaio.nready() == 50, what="queued")
    fileno = linuxaio.poll_fileno()

    def child():
        code = 0
        if linuxaio.nreqs() != 0 or linuxaio.nready() != 0 or linuxaio.npending() != 0:
            code |= 1
        if linuxaio.poll_fileno() != fileno:
            code |= 2
        os.fstat(fileno)
        linuxaio.min_parallel(2)
        mine = []
        linuxaio.aio_nop(mine.append)
        linuxaio.aio_stat("/", mine.append)
        linuxaio.aio_busy(0.01, mine.append)
        linuxaio.flush()
        if len(mine) != 3 or os.stat("/") not in mine:
            code |= 4
        if parent_got:             # none of the parent's callbacks ran here
            code |= 8
        if linuxaio.nreqs() != 0:
            code |= 16
        return code

    assert run_forked(child) == 0
    linuxaio.min_parallel(4)
    linuxaio.flush()
    assert parent_got == [0] * 54       # the parent's requests still complete in the parent
    assert linuxaio.poll_fileno() == fileno


def test_fork_with_results_waiting_and_requests_running(datafile):
    parent = []
    for _ in range(20):
        linuxaio.aio_nop(parent.append)
    linuxaio.aio_open(datafile[0], os.O_RDONLY, 0, parent.append)
    wait_until(lambda: linuxaio.npending() == 21, what="results waiting")
    for _ in range(4):
        linuxaio.aio_busy(0.15, parent.append)
    wait_started()

    def child():
        if linuxaio.nreqs():
            return 1
        got = []
        for _ in range(100):
            linuxaio.aio_nop(got.append)
        linuxaio.flush()
        return 0 if got == [0] * 100 and linuxaio.nreqs() == 0 and not parent else 2

    assert run_forked(child) == 0
    linuxaio.flush()
    assert len(parent) == 25
    fds = [v for v in parent if v != 0]
    assert len(fds) == 1
    os.fstat(fds[0])
    os.close(fds[0])


def test_fork_in_a_loop_while_busy():
    """Many forks with work in flight: every child works, the parent loses nothing."""
    parent = []
    for round_ in range(5):
        for _ in range(30):
            linuxaio.aio_nop(parent.append)
        linuxaio.aio_busy(0.02, parent.append)

        def child():
            got = []
            linuxaio.aio_nop(got.append)
            linuxaio.flush()
            return 0 if got == [0] and linuxaio.nreqs() == 0 else 1

        assert run_forked(child) == 0
    linuxaio.flush()
    assert len(parent) == 5 * 31


def test_fork_from_another_thread_while_main_thread_polls():
    results = []
    stop = threading.Event()

    def poller():
        while not stop.is_set():
            linuxaio.aio_nop(results.append)
            linuxaio.poll_cb()

    t = threading.Thread(target=poller)
    t.start()
    try:
        codes = []
        for _ in range(3):
            def child():
                got = []
                linuxaio.aio_nop(got.append)
                linuxaio.flush()
                return 0 if got == [0] else 1
            codes.append(run_forked(child))
    finally:
        stop.set()
        t.join(10)
    assert codes == [0, 0, 0]
    linuxaio.flush()


# ------------------------------------------------------------ interpreter exit

EXIT_CASES = {
    "busy_and_nops": """
        for _ in range(8):
            linuxaio.aio_busy(30, print)
        for _ in range(100000):
            linuxaio.aio_nop(print)
    """,
    "queued_with_no_threads": """
        linuxaio.max_parallel(0)
        for _ in range(10000):
            linuxaio.aio_nop(print)
    """,
    "reads_into_buffers": """
        fd = os.open("/dev/zero", os.O_RDONLY)
        for _ in range(200):
            linuxaio.aio_read(fd, 0, 1 << 20, bytearray(), 0, print)
        linuxaio.aio_busy(30)
    """,
    "results_waiting": """
        for _ in range(1000):
            linuxaio.aio_nop(print)
        while linuxaio.npending() < 1000:
            time.sleep(0.001)
    """,
    "groups_and_feeders": """
        g = linuxaio.aio_group(print)
        g.feed(lambda grp: grp.add(linuxaio.aio_busy(30)))
        g.limit(10)
        linuxaio.aio_group(print).add(linuxaio.aio_nop(print))
    """,
    "poller_thread_blocked": """
        import threading
        linuxaio.aio_busy(30)
        threading.Thread(target=linuxaio.flush, daemon=True).start()
        time.sleep(0.1)
    """,
    "sys_exit_from_callback": """
        linuxaio.aio_busy(30)
        linuxaio.aio_nop(lambda v: sys.exit(0))
        linuxaio.poll_wait()
        while True:
            linuxaio.poll_cb()
            time.sleep(0.01)
    """,
}


@pytest.mark.parametrize("case", sorted(EXIT_CASES))
def test_exit_with_requests_pending(case):
    code = "import linuxaio, os, sys, time\n" + textwrap.dedent(EXIT_CASES[case]) + \
        "\nprint('exiting', flush=True)\n"
    proc, elapsed = run_python(code, timeout=20)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert elapsed < 8, f"exit took {elapsed:.1f}s"
    if case != "sys_exit_from_callback":
        # callbacks of requests never handed to poll_cb do not run at exit
        assert proc.stdout == "exiting\n"
