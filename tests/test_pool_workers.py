"""The thread pool's wake-up rules: queued work always finds a worker.

dispatch() does not wake a sleeper for every request: while requests are
quick it counts on the running workers and one armed sleeper (the standby).
Each test here builds a state in which that bet can go wrong and checks
that nothing stays queued while a worker sleeps.  They run in a child
interpreter: a stall there is a timeout, not a hung suite.
"""
import textwrap

from aio_helpers import run_python

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
