"""The thread pool's wake-up rules: queued work always finds a worker.

dispatch() does not wake a sleeper for every request: while requests are
quick it counts on the running workers and one armed sleeper (the standby).
Each test here builds a state in which that bet can go wrong and checks
that nothing stays queued while a worker sleeps.  They run in a child
interpreter: a stall there is a timeout, not a hung suite.
"""
import textwrap

from aio_helpers import TEACH_BLOCKING, run_python

# After rounds of quick reads (into fresh mmaps: each first touch faults, so
# timings vary), min_parallel(4) re-arms the sleepers, then four reads of empty
# pipes must all be running at once.  Before the fix a sleeper woken by the
# new limits took one read as an ordinary worker although dispatch() had
# counted on it as the standby for all of them: one read stayed queued until
# idle_timeout (10 s), about 1 round in 40 here.
STALL_ROUNDS = """
import linuxaio, mmap, os, sys, tempfile, time
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else {rounds}
fd, path = tempfile.mkstemp()
os.write(fd, os.urandom(64 * 4096))
stalls = []
for r in range(rounds):
    for _ in range(3):
        maps = [mmap.mmap(-1, 4096) for _ in range(64)]
        for i in range(64):
            linuxaio.aio_read(fd, i * 4096, 4096, maps[i], 0, None)
        linuxaio.flush()
    linuxaio.min_parallel(4)
    pipes = [os.pipe() for _ in range(4)]
    for rfd, _ in pipes:
        linuxaio.aio_read(rfd, None, 1, bytearray(1), 0, None)
    deadline = time.monotonic() + 3   # the standby's 1 ms, on a loaded machine
    while linuxaio.nready() and time.monotonic() < deadline:
        time.sleep(0.001)
    if linuxaio.nready():
        stalls.append((r, linuxaio.nready(), linuxaio.nthreads()))
    for _, wfd in pipes:
        os.write(wfd, b"x")
    linuxaio.flush()
    for rfd, wfd in pipes:
        os.close(rfd)
        os.close(wfd)
os.unlink(path)
print("stalls", stalls)
"""


def test_blocking_reads_never_stay_queued_behind_a_sleeper():
    proc, _ = run_python(STALL_ROUNDS.format(rounds=400), timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "stalls []", proc.stdout


# ---- growth for requests that block (max_blocking_parallel) ----

# Teach the pool that requests block: reads of pipes that a thread feeds a
# few milliseconds later (off the CPU all that time, as a cold read waits
# for the device).  Then reads of empty pipes, more than max_parallel: with
# growth they all run at once; the extra threads leave once nothing waits.
GROWTH = """
import linuxaio, os, threading, time
linuxaio.max_parallel(2)
{setup}
{teach_def}
{teach}
pipes = [os.pipe() for _ in range(8)]
for rfd, _ in pipes:
    linuxaio.aio_read(rfd, None, 1, bytearray(1), 0, None)
deadline = time.monotonic() + 2
while linuxaio.nready() and time.monotonic() < deadline:
    time.sleep(0.005)
running_at_once = 8 - linuxaio.nready()
peak = linuxaio.nthreads()
for _, wfd in pipes:
    os.write(wfd, b"x")
linuxaio.flush()
deadline = time.monotonic() + 5
while linuxaio.nthreads() > 2 and time.monotonic() < deadline:
    time.sleep(0.005)
print(running_at_once, peak, linuxaio.nthreads())
"""


def growth(setup="", teach="teach(24, 0.003)"):
    proc, _ = run_python(GROWTH.format(setup=setup, teach_def=TEACH_BLOCKING, teach=teach), timeout=60)
    assert proc.returncode == 0, proc.stderr
    return tuple(int(x) for x in proc.stdout.split())


def test_pool_grows_beyond_max_parallel_while_requests_block_and_shrinks_after():
    running, peak, after = growth()
    assert running == 8 and peak >= 8      # every blocking read got a thread
    assert after <= 2                      # back to max_parallel once idle


def test_max_blocking_parallel_caps_the_growth():
    running, peak, after = growth(setup="linuxaio.max_blocking_parallel(5)")
    assert running == 5 and peak == 5
    assert after <= 2


def test_max_blocking_parallel_0_means_no_growth():
    running, peak, _ = growth(setup="linuxaio.max_blocking_parallel(0)")
    assert running == 2 and peak == 2


def test_sleeping_requests_do_not_grow_the_pool():
    """aio_busy sleeps: off the CPU, but not waiting for a device."""
    running, peak, _ = growth(teach="[linuxaio.aio_busy(0.003) for _ in range(24)]; linuxaio.flush()")
    assert running == 2 and peak == 2


def test_quick_requests_do_not_grow_the_pool():
    running, peak, _ = growth(teach="[linuxaio.aio_nop(None) for _ in range(500)]; linuxaio.flush()")
    assert running == 2 and peak == 2


def test_one_thread_limit_never_grows():
    """max_parallel(1): one request at a time, in order, stays true."""
    running, peak, _ = growth(setup="linuxaio.max_parallel(1)")
    assert running == 1 and peak == 1
